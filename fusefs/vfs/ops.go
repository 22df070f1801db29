package vfs

import (
	"context"
	"fmt"

	"github.com/sphere-sandbox/sphere/policy"
)

// class is what a Ref is, which decides what every operation does with it.
type class uint8

const (
	classRoot       class = iota
	classKindDir          // datasets/, s3/, secrets/, images/, ...
	classSecret           // secrets/NAME
	classDescriptor       // images/NAME.json and the other descriptors: descriptor.go
	classDataset          // datasets/NAME/ and models/NAME/ (the gate) and everything below: dataset.go
	classBucket           // s3/NAME/ (the gate) and everything below it: bucket.go
)

func (r Ref) class() class {
	switch {
	case r.Kind == "":
		return classRoot
	case r.Name == "":
		return classKindDir
	case r.Kind == KindSecret:
		return classSecret
	case isDescriptor(r.Kind):
		return classDescriptor
	case r.Kind == KindDataset || r.Kind == KindModel:
		return classDataset
	default:
		return classBucket
	}
}

// Access bits, as access(2) takes them.
const (
	MayExec  = 1
	MayWrite = 2
	MayRead  = 4
)

// DirEntry is one entry of a listing. Attr is the entry as the caller would
// find it with Lookup, when it is the same for every caller (Timeout > 0):
// the kernel may then keep it from the listing alone (READDIRPLUS).
type DirEntry struct {
	Name string
	Ref  Ref
	Attr Attr
}

// OpenMode is how a file is opened.
type OpenMode struct {
	Read, Write bool
	Truncate    bool // replace the content: the handle starts empty
	Exclusive   bool // create only: the name must be new (ErrExists)
}

// Rename flags, as renameat2(2) takes them.
const (
	RenameNoReplace = 1 << 0
	RenameExchange  = 1 << 1
)

// OpenFile is an open file of the tree: a secret (*Handle), a dataset's
// file (*DatasetHandle) or an object (*ObjectHandle). Each of its
// operations is decided for the caller of that request.
type OpenFile interface {
	// Read copies what is at off into dest; 0 at the end.
	Read(ctx context.Context, c Caller, dest []byte, off int64) (int, error)
	Write(ctx context.Context, c Caller, data []byte, off int64) (int, error)
	// Truncate is ftruncate(2).
	Truncate(ctx context.Context, c Caller, size int64) error
	// Flush is close(2) of one descriptor of the file; Fsync is fsync(2).
	Flush(ctx context.Context, c Caller) error
	Fsync(ctx context.Context, c Caller) error
	// Release is the file's last close. The kernel sends it without a
	// caller, after close(2) has returned: what it still commits was
	// decided for the callers who wrote; its error can only be logged.
	Release() error
	// Caching says what the kernel's page cache may hold of the file.
	Caching() Caching
	// pending is the length of what was written and not committed yet.
	pending() (int64, bool)
}

// Caching is what the kernel's page cache may hold of an open file.
type Caching uint8

const (
	// CacheNone: nothing (direct I/O). A secret's value never enters the
	// page cache, where another uid's read could be served from it.
	CacheNone Caching = iota
	// CacheOpen: the pages read while the file is open, dropped when it is
	// opened again, since the content may have changed in between.
	CacheOpen
	// CacheKeep: the pages are kept across opens: the content never changes
	// (a sealed dataset's file).
	CacheKeep
)

// SetAttr is what a setattr asks to change.
type SetAttr struct {
	Size    int64
	SetSize bool
	Mode    bool // permission bits
	Owner   bool // uid or gid
	Times   bool // access or modification time
}

// resolve returns what r is now, for the caller:
//   - the root always exists: the mount point is visible to everyone anyway;
//   - a kind directory exists for those who may view the project, and is
//     refused (ErrDenied) to others;
//   - a resource exists if the store has it under that name (and, when r
//     has one, that ID) and the caller may view it: ErrNotFound otherwise.
//     A connector exists only while it is activated.
//
// For a node below a dataset's or connector's directory, it resolves that
// resource: what is below is for dataset.go and bucket.go to find.
func (t *Tree) resolve(c Caller, op string, r Ref) (Resource, error) {
	switch r.class() {
	case classRoot:
		return Resource{}, nil
	case classKindDir:
		_, err := t.authorize(c, t.onProject(op, r.Path(), policy.ActViewProject))
		return Resource{}, err
	}
	res, ok := t.store.Resource(t.project, r.Kind, r.Name)
	if !ok || (r.ID != 0 && res.ID != r.ID) || (res.Kind == KindS3 && !res.Active) {
		return Resource{}, ErrNotFound
	}
	q := t.onResource(op, res, policy.ActViewResource)
	q.path = r.Path()
	q.hidden = true
	_, err := t.authorize(c, q)
	return res, err
}

// attr is how the caller sees a node resolve has let it see, above the
// gates (the gates and what is below them: gateAttr, dataset.go,
// bucket.go). The permission bits come from probes, which are not audited:
// they refuse nothing, and the operation that follows asks policy again.
func (t *Tree) attr(c Caller, r Ref, res Resource, h OpenFile) Attr {
	a := Attr{Dir: r.IsDir(), UID: c.UID, GID: c.GID, Mtime: t.born}
	switch r.class() {
	case classRoot:
		if t.may(c, t.onProject("getattr", ".", policy.ActViewProject)) {
			a.Perm = 0o555
		}
	case classKindDir:
		a.Perm = 0o555
		if creatable(r.Kind) && t.may(c, t.onProject("getattr", r.Path(), policy.ActCreateResource)) {
			a.Perm = 0o755
		}
	case classSecret:
		a.Mtime = res.Modified
		// A secret's length is about its value: only those who may read it see it.
		if t.may(c, t.onResource("getattr", res, policy.ActUseResource)) {
			a.Perm |= 0o400
			a.Size = res.Size
			if n, ok := pending(h); ok {
				a.Size = n
			}
		}
		if !res.Published && t.may(c, t.onResource("getattr", res, policy.ActEditResource)) {
			a.Perm |= 0o200
		}
	case classDescriptor:
		// Reading a descriptor is viewing it, which resolve has decided.
		a.Perm, a.Size, a.Mtime = 0o444, int64(len(res.Descriptor)), res.Modified
	}
	return a
}

// pending is h.pending, for a handle that may be nil.
func pending(h OpenFile) (int64, bool) {
	if h == nil {
		return 0, false
	}
	return h.pending()
}

// gateAttr is how the caller sees datasets/NAME or s3/NAME: r-x for those
// who may look inside (view a dataset, use a connector), w for those who
// may change what is inside, now. It is the caller's own, so never kept.
func (t *Tree) gateAttr(c Caller, res Resource, look, write bool) Attr {
	a := Attr{Dir: true, UID: c.UID, GID: c.GID, Mtime: res.Modified}
	if look {
		a.Perm = 0o555
	}
	if write {
		a.Perm |= 0o200
	}
	return a
}

// resourceAttr is how the caller sees the resource res, resolved for it:
// a secret, or the gate of a dataset or a connector.
func (t *Tree) resourceAttr(ctx context.Context, c Caller, r Ref, res Resource) Attr {
	switch r.class() {
	case classDataset:
		return t.datasetGateAttr(c, res)
	case classBucket:
		return t.bucketGateAttr(ctx, c, res)
	default:
		return t.attr(c, r, res, nil)
	}
}

// creatable reports whether resources of kind are created through the mount:
// secrets by writing a file, datasets by mkdir. Connectors need fields a
// filesystem cannot give (endpoint, bucket, keys): `sphere s3 create`.
func creatable(kind string) bool { return kind == KindSecret || kind == KindDataset }

// Getattr returns r as the caller sees it. h, if not nil, is a handle open on
// r, whose uncommitted content gives the size.
func (t *Tree) Getattr(ctx context.Context, c Caller, r Ref, h OpenFile) (Attr, error) {
	switch r.class() {
	case classDataset:
		return t.datasetGetattr(c, r, h)
	case classBucket:
		return t.bucketGetattr(ctx, c, r, h)
	}
	res, err := t.resolve(c, "getattr", r)
	if err != nil {
		return Attr{}, err
	}
	return t.attr(c, r, res, h), nil
}

// Lookup finds name in dir. At the root, a caller who may not view the
// project is refused (ErrDenied); in a kind directory, what the caller may
// not view is absent (ErrNotFound).
func (t *Tree) Lookup(ctx context.Context, c Caller, dir Ref, name string) (Ref, Attr, error) {
	switch dir.class() {
	case classRoot:
		if _, err := t.authorize(c, t.onProject("lookup", name, policy.ActViewProject)); err != nil {
			return Ref{}, Attr{}, err
		}
		for _, d := range dirs {
			if d.name == name {
				r := Ref{Kind: d.kind}
				a := t.attr(c, r, Resource{}, nil)
				a.EntryTimeout = sealedTimeout
				return r, a, nil
			}
		}
		return Ref{}, Attr{}, ErrNotFound
	case classKindDir:
		if _, err := t.resolve(c, "lookup", dir); err != nil {
			return Ref{}, Attr{}, err
		}
		rname, ok := resourceName(dir.Kind, name)
		if !ok {
			return Ref{}, Attr{}, ErrNotFound
		}
		res, err := t.resolve(c, "lookup", Ref{Kind: dir.Kind, Name: rname})
		if err != nil {
			return Ref{}, Attr{}, err
		}
		r := Ref{Kind: res.Kind, Name: res.Name, ID: res.ID}
		if res.Kind == KindS3 {
			// The gate of what the kernel keeps below it, for any
			// caller: those who may not use the connector stop here.
			if _, err := t.authorize(c, t.onResource("lookup", res, policy.ActUseResource)); err != nil {
				return Ref{}, Attr{}, err
			}
		}
		return r, t.resourceAttr(ctx, c, r, res), nil
	case classDataset:
		return t.datasetLookup(c, dir, name)
	case classBucket:
		return t.bucketLookup(ctx, c, dir, name)
	default:
		return Ref{}, Attr{}, ErrNotDir
	}
}

// Readdir lists dir: the entries the caller may view, sorted by name within
// a kind directory.
func (t *Tree) Readdir(ctx context.Context, c Caller, dir Ref) ([]DirEntry, error) {
	switch dir.class() {
	case classRoot:
		if _, err := t.authorize(c, t.onProject("readdir", ".", policy.ActViewProject)); err != nil {
			return nil, err
		}
		es := make([]DirEntry, 0, len(dirs))
		for _, d := range dirs {
			es = append(es, DirEntry{Name: d.name, Ref: Ref{Kind: d.kind}})
		}
		return es, nil
	case classKindDir:
		if _, err := t.resolve(c, "readdir", dir); err != nil {
			return nil, err
		}
		var es []DirEntry
		for _, res := range t.store.Resources(t.project, dir.Kind) {
			if res.Kind == KindS3 && !res.Active {
				continue
			}
			if t.may(c, t.onResource("readdir", res, policy.ActViewResource)) {
				r := Ref{Kind: res.Kind, Name: res.Name, ID: res.ID}
				es = append(es, DirEntry{Name: r.entryName(), Ref: r})
			}
		}
		return es, nil
	case classDataset:
		return t.datasetReaddir(c, dir)
	case classBucket:
		return t.bucketReaddir(ctx, c, dir)
	default:
		return nil, ErrNotDir
	}
}

// Access answers access(2) for mask (MayRead|MayWrite|MayExec; 0 asks
// whether r exists) with the same decisions the operations take.
func (t *Tree) Access(ctx context.Context, c Caller, r Ref, mask uint32) error {
	switch r.class() {
	case classDataset:
		return t.datasetAccess(c, r, mask)
	case classBucket:
		return t.bucketAccess(ctx, c, r, mask)
	}
	res, err := t.resolve(c, "access", r)
	if err != nil || mask == 0 {
		return err
	}
	switch r.class() {
	case classRoot:
		if mask&MayWrite != 0 {
			return ErrDenied // nothing is ever created at the root
		}
		_, err = t.authorize(c, t.onProject("access", ".", policy.ActViewProject))
	case classKindDir:
		switch {
		case mask&MayWrite == 0: // resolve has checked the right to view
		case readOnlyKind(r.Kind):
			err = ErrReadOnly
		case !creatable(r.Kind):
			err = ErrDenied
		default:
			_, err = t.authorize(c, t.onProject("access", r.Path(), policy.ActCreateResource))
		}
	case classSecret:
		if mask&MayExec != 0 {
			return ErrDenied
		}
		if mask&MayWrite != 0 {
			if _, err = t.authorizeEdit(c, "access", res); err != nil {
				return err
			}
		}
		if mask&MayRead != 0 {
			_, err = t.authorize(c, t.onResource("access", res, policy.ActUseResource))
		}
	case classDescriptor:
		switch {
		case mask&MayWrite != 0:
			err = ErrReadOnly
		case mask&MayExec != 0:
			err = ErrDenied
		} // reading is viewing, which resolve has decided
	}
	return err
}

// authorizeEdit decides changing res: a published resource is read-only
// here whoever asks; otherwise policy decides edit-resource.
func (t *Tree) authorizeEdit(c Caller, op string, res Resource) (principal, error) {
	if readOnlyHere(res) {
		return principal{}, ErrReadOnly
	}
	return t.authorize(c, t.onResource(op, res, policy.ActEditResource))
}

// authorizeNew decides creating the resource kind/name in the project:
// ErrExists if the caller sees one by that name already; ErrDenied if one
// exists the caller may not see (the name is taken, but the caller must not
// learn by what); otherwise policy's create-resource on the project.
func (t *Tree) authorizeNew(c Caller, op, kind, name string) (principal, error) {
	if res, ok := t.store.Resource(t.project, kind, name); ok {
		if p, err := t.authorize(c, t.onResource(op, res, policy.ActViewResource)); err != nil {
			return p, err
		}
		return principal{}, ErrExists
	}
	q := t.onProject(op, Ref{Kind: kind, Name: name}.Path(), policy.ActCreateResource)
	if kind == KindSecret {
		q.audit = auditAll
	}
	return t.authorize(c, q)
}

// Open opens the file r. A secret: reading needs use-resource, writing
// edit-resource (a published secret is read-only); both are asked again on
// every read and write of the handle. Datasets' files and objects:
// dataset.go and bucket.go.
func (t *Tree) Open(ctx context.Context, c Caller, r Ref, m OpenMode) (OpenFile, error) {
	switch r.class() {
	case classSecret:
	case classDescriptor:
		return t.descriptorOpen(c, r, m)
	case classDataset:
		return t.datasetOpen(ctx, c, r, m)
	case classBucket:
		return t.bucketOpen(ctx, c, r, m)
	default:
		return nil, ErrNotSupported // directories are listed with Readdir
	}
	res, err := t.resolve(c, "open", r)
	if err != nil {
		return nil, err
	}
	return t.open(c, res, m)
}

func (t *Tree) open(c Caller, res Resource, m OpenMode) (*Handle, error) {
	if m.Read {
		if _, err := t.authorize(c, t.onResource("open", res, policy.ActUseResource)); err != nil {
			return nil, err
		}
	}
	if m.Write {
		if _, err := t.authorizeEdit(c, "open", res); err != nil {
			return nil, err
		}
	}
	h := &Handle{tree: t, res: res}
	if m.Write && m.Truncate {
		h.replace(nil)
		h.dirty = true
	}
	return h, nil
}

// Create creates the file name in dir and opens it: a secret in secrets/,
// a file in a dataset or a bucket. A secret exists in the store, empty, as
// soon as Create returns, so that every other caller and node sees the file
// the kernel now shows; the value written follows on flush.
func (t *Tree) Create(ctx context.Context, c Caller, dir Ref, name string, m OpenMode) (Ref, Attr, OpenFile, error) {
	switch dir.class() {
	case classDataset:
		return t.datasetCreate(ctx, c, dir, name, m)
	case classBucket:
		return t.bucketCreate(ctx, c, dir, name, m)
	}
	if err := t.resolveToChange(c, "create", dir); err != nil {
		return Ref{}, Attr{}, nil, err
	}
	if dir.class() != classKindDir || dir.Kind != KindSecret {
		return Ref{}, Attr{}, nil, ErrNotPermitted // only secrets are files
	}
	if err := ValidSecretName(name); err != nil {
		return Ref{}, Attr{}, nil, err
	}
	p, err := t.authorizeNew(c, "create", KindSecret, name)
	if err != nil {
		return Ref{}, Attr{}, nil, err
	}
	sctx, cancel := storeContext(ctx)
	defer cancel()
	if err := t.store.WriteSecret(sctx, p.id, t.project, name, nil); err != nil {
		return Ref{}, Attr{}, nil, err
	}
	res, ok := t.store.Resource(t.project, KindSecret, name)
	if !ok {
		return Ref{}, Attr{}, nil, fmt.Errorf("%s: secret %s missing right after it was written", t.path, name)
	}
	h, err := t.open(c, res, m)
	if err != nil {
		return Ref{}, Attr{}, nil, err
	}
	if !h.loaded {
		h.replace(nil)
	}
	r := Ref{Kind: KindSecret, Name: name, ID: res.ID}
	return r, t.attr(c, r, res, h), h, nil
}

// Mkdir creates the dataset name in datasets/, as `sphere dataset create`
// does, or a directory in a dataset or a bucket. Nothing else is created
// with mkdir.
func (t *Tree) Mkdir(ctx context.Context, c Caller, dir Ref, name string) (Ref, Attr, error) {
	switch dir.class() {
	case classDataset:
		return t.datasetMkdir(ctx, c, dir, name)
	case classBucket:
		return t.bucketMkdir(ctx, c, dir, name)
	}
	if err := t.resolveToChange(c, "mkdir", dir); err != nil {
		return Ref{}, Attr{}, err
	}
	if dir.class() != classKindDir || dir.Kind != KindDataset {
		return Ref{}, Attr{}, ErrNotPermitted
	}
	if err := ValidResourceName(name); err != nil {
		return Ref{}, Attr{}, err
	}
	p, err := t.authorizeNew(c, "mkdir", KindDataset, name)
	if err != nil {
		return Ref{}, Attr{}, err
	}
	sctx, cancel := storeContext(ctx)
	defer cancel()
	if err := t.store.CreateResource(sctx, p.id, t.project, KindDataset, name); err != nil {
		return Ref{}, Attr{}, err
	}
	res, ok := t.store.Resource(t.project, KindDataset, name)
	if !ok {
		return Ref{}, Attr{}, fmt.Errorf("%s: dataset %s missing right after it was created", t.path, name)
	}
	r := Ref{Kind: KindDataset, Name: name, ID: res.ID}
	return r, t.resourceAttr(ctx, c, r, res), nil
}

// Unlink deletes the secret name, as `sphere secret delete` does, or a
// file of a dataset or a bucket.
func (t *Tree) Unlink(ctx context.Context, c Caller, dir Ref, name string) error {
	switch dir.class() {
	case classDataset:
		return t.datasetRemove(ctx, c, "unlink", dir, name)
	case classBucket:
		return t.bucketRemove(ctx, c, "unlink", dir, name)
	}
	if err := t.resolveToChange(c, "unlink", dir); err != nil {
		return err
	}
	if dir.class() != classKindDir || dir.Kind != KindSecret {
		return ErrNotPermitted // everything else is a directory or fixed
	}
	return t.remove(ctx, c, "unlink", Ref{Kind: KindSecret, Name: name})
}

// Rmdir deletes the dataset name, as deleting it with the CLI does, or an
// empty directory of a dataset or a bucket. Connectors are deactivated and
// deleted with `sphere s3`, not by removing their directory, and the
// directories at the root are fixed.
func (t *Tree) Rmdir(ctx context.Context, c Caller, dir Ref, name string) error {
	switch dir.class() {
	case classDataset:
		return t.datasetRemove(ctx, c, "rmdir", dir, name)
	case classBucket:
		return t.bucketRemove(ctx, c, "rmdir", dir, name)
	}
	if err := t.resolveToChange(c, "rmdir", dir); err != nil {
		return err
	}
	if dir.class() != classKindDir || dir.Kind != KindDataset {
		return ErrNotPermitted
	}
	return t.remove(ctx, c, "rmdir", Ref{Kind: KindDataset, Name: name})
}

// resolveToChange resolves dir, where the caller asks to add or remove an
// entry: a kind directory of what the mount never changes is ErrReadOnly.
func (t *Tree) resolveToChange(c Caller, op string, dir Ref) error {
	if _, err := t.resolve(c, op, dir); err != nil {
		return err
	}
	if dir.class() == classKindDir && readOnlyKind(dir.Kind) {
		return ErrReadOnly
	}
	return nil
}

func (t *Tree) remove(ctx context.Context, c Caller, op string, r Ref) error {
	res, err := t.resolve(c, op, r)
	if err != nil {
		return err
	}
	if readOnlyHere(res) {
		return ErrReadOnly
	}
	p, err := t.authorize(c, t.onResource(op, res, policy.ActDeleteResource))
	if err != nil {
		return err
	}
	if res.Kind == KindDataset && t.datasets != nil {
		// Only an empty dataset goes with rmdir, like any directory.
		if es, err := t.datasets.DatasetList(res.ID, ""); err != nil {
			return err
		} else if len(es) > 0 {
			return ErrNotEmpty
		}
	}
	sctx, cancel := storeContext(ctx)
	defer cancel()
	return t.store.DeleteResource(sctx, p.id, t.project, res.Kind, res.Name)
}

// Rename answers rename(2) of name in dir to newName in newDir. A file
// renamed within one bucket is renamed there (bucket.go), and it returns
// the file's Ref at its new place. Everything else, once the caller may
// see it, is ErrCrossDevice, so that mv copies and deletes, each step
// decided on its own; the directories at the root are fixed.
func (t *Tree) Rename(ctx context.Context, c Caller, dir Ref, name string, newDir Ref, newName string, flags uint32) (Ref, error) {
	switch dir.class() {
	case classBucket:
		if newDir.class() == classBucket && newDir.Name == dir.Name && newDir.ID == dir.ID {
			return t.bucketRename(ctx, c, dir, name, newDir, newName, flags)
		}
		_, _, err := t.bucketLookup(ctx, c, dir, name)
		return Ref{}, orCrossDevice(err)
	case classDataset:
		_, _, err := t.datasetLookup(c, dir, name)
		return Ref{}, orCrossDevice(err)
	case classKindDir:
		if _, err := t.resolve(c, "rename", dir); err != nil {
			return Ref{}, err
		}
		rname, ok := resourceName(dir.Kind, name)
		if !ok {
			return Ref{}, ErrNotFound
		}
		if _, err := t.resolve(c, "rename", Ref{Kind: dir.Kind, Name: rname}); err != nil {
			return Ref{}, err
		}
		if readOnlyKind(dir.Kind) {
			return Ref{}, ErrReadOnly
		}
		return Ref{}, ErrCrossDevice
	default:
		if _, err := t.resolve(c, "rename", dir); err != nil {
			return Ref{}, err
		}
		return Ref{}, ErrNotPermitted
	}
}

func orCrossDevice(err error) error {
	if err != nil {
		return err
	}
	return ErrCrossDevice
}

// MakeNode answers link, symlink and mknod in dir: the tree holds only
// directories and files, so once the caller may see dir the answer is
// ErrNotPermitted.
func (t *Tree) MakeNode(c Caller, dir Ref) error {
	if _, err := t.resolve(c, "mknod", dir); err != nil {
		return err
	}
	return ErrNotPermitted
}

// Xattr answers every extended-attribute operation on r: ErrNotSupported
// once the caller may see r.
func (t *Tree) Xattr(c Caller, r Ref) error {
	if _, err := t.resolve(c, "xattr", r); err != nil {
		return err
	}
	return ErrNotSupported
}

// Setattr changes r: only a file's size (truncate; through h when the
// kernel names an open handle). Modes and owners are never changed
// (ErrNotPermitted): they show each caller's rights and are not settings.
// Setting a file's times is accepted from those who may change it, and
// ignored: the store keeps the modification time. It returns r's
// attributes after the change.
func (t *Tree) Setattr(ctx context.Context, c Caller, r Ref, h OpenFile, s SetAttr) (Attr, error) {
	switch r.class() {
	case classDataset:
		return t.datasetSetattr(ctx, c, r, h, s)
	case classBucket:
		return t.bucketSetattr(ctx, c, r, h, s)
	}
	res, err := t.resolve(c, "setattr", r)
	if err != nil {
		return Attr{}, err
	}
	switch {
	case s.Mode || s.Owner:
		return Attr{}, ErrNotPermitted
	case !s.SetSize && !s.Times:
	case r.class() == classDescriptor:
		return Attr{}, ErrReadOnly
	case r.class() != classSecret:
		return Attr{}, ErrNotPermitted // the directories' sizes and times are the tree's
	case s.SetSize && h != nil:
		err = h.Truncate(ctx, c, s.Size)
	case s.SetSize:
		err = t.truncate(ctx, c, res, s.Size)
	default:
		_, err = t.authorizeEdit(c, "setattr", res)
	}
	if err != nil {
		return Attr{}, err
	}
	if s.SetSize && h == nil {
		// The store has the new length now.
		if res, err = t.resolve(c, "setattr", r); err != nil {
			return Attr{}, err
		}
	}
	return t.attr(c, r, res, h), nil
}

// truncate sets the length of a secret no handle is open on: truncate(2).
func (t *Tree) truncate(ctx context.Context, c Caller, res Resource, size int64) error {
	p, err := t.authorizeEdit(c, "truncate", res)
	if err != nil {
		return err
	}
	if size > MaxSecretSize {
		return ErrTooLarge
	}
	sctx, cancel := storeContext(ctx)
	defer cancel()
	var v []byte
	if size > 0 {
		if v, err = t.store.ReadSecret(sctx, p.id, res.ID); err != nil {
			return err
		}
		defer clear(v)
	}
	nv := make([]byte, size)
	copy(nv, v)
	defer clear(nv)
	return t.store.WriteSecret(sctx, p.id, t.project, res.Name, nv)
}
