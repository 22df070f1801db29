package vfs

import (
	"context"
	"fmt"

	"github.com/sphere-sandbox/sphere/policy"
)

// class is what a Ref is, which decides what every operation does with it.
type class uint8

const (
	classRoot        class = iota
	classKindDir           // datasets/, s3/, secrets/
	classResourceDir       // datasets/NAME/, s3/NAME/: their contents are served by the dataset and S3 layers
	classSecret            // secrets/NAME
)

func (r Ref) class() class {
	switch {
	case r.Kind == "":
		return classRoot
	case r.Name == "":
		return classKindDir
	case r.Kind == KindSecret:
		return classSecret
	default:
		return classResourceDir
	}
}

// Access bits, as access(2) takes them.
const (
	MayExec  = 1
	MayWrite = 2
	MayRead  = 4
)

// DirEntry is one entry of a listing.
type DirEntry struct {
	Name string
	Ref  Ref
}

// OpenMode is how a secret is opened.
type OpenMode struct {
	Read, Write bool
	Truncate    bool // replace the value: the handle starts empty
}

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
func (t *Tree) resolve(c Caller, op string, r Ref) (Resource, error) {
	switch r.class() {
	case classRoot:
		return Resource{}, nil
	case classKindDir:
		_, err := t.authorize(c, t.onProject(op, r.Path(), policy.ActViewProject))
		return Resource{}, err
	}
	res, ok := t.store.Resource(t.project, r.Kind, r.Name)
	if !ok || (r.ID != 0 && res.ID != r.ID) {
		return Resource{}, ErrNotFound
	}
	q := t.onResource(op, res, policy.ActViewResource)
	q.hidden = true
	_, err := t.authorize(c, q)
	return res, err
}

// attr is how the caller sees a node resolve has let it see. The permission
// bits come from probes, which are not audited: they refuse nothing, and the
// operation that follows asks policy again.
func (t *Tree) attr(c Caller, r Ref, res Resource, h *Handle) Attr {
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
	case classResourceDir:
		a.Mtime = res.Modified
		if t.may(c, t.onResource("getattr", res, policy.ActUseResource)) {
			a.Perm = 0o555
		}
	case classSecret:
		a.Mtime = res.Modified
		// A secret's length is about its value: only those who may read it see it.
		if t.may(c, t.onResource("getattr", res, policy.ActUseResource)) {
			a.Perm |= 0o400
			a.Size = res.Size
			if n, ok := h.pending(); ok {
				a.Size = n
			}
		}
		if !res.Published && t.may(c, t.onResource("getattr", res, policy.ActEditResource)) {
			a.Perm |= 0o200
		}
	}
	return a
}

// creatable reports whether resources of kind are created through the mount:
// secrets by writing a file, datasets by mkdir. Connectors need fields a
// filesystem cannot give (endpoint, bucket, keys): `sphere s3 create`.
func creatable(kind string) bool { return kind == KindSecret || kind == KindDataset }

// Getattr returns r as the caller sees it. h, if not nil, is a handle open on
// r, whose uncommitted value gives the size.
func (t *Tree) Getattr(c Caller, r Ref, h *Handle) (Attr, error) {
	res, err := t.resolve(c, "getattr", r)
	if err != nil {
		return Attr{}, err
	}
	return t.attr(c, r, res, h), nil
}

// Lookup finds name in dir. At the root, a caller who may not view the
// project is refused (ErrDenied); in a kind directory, what the caller may
// not view is absent (ErrNotFound).
func (t *Tree) Lookup(c Caller, dir Ref, name string) (Ref, Attr, error) {
	switch dir.class() {
	case classRoot:
		if _, err := t.authorize(c, t.onProject("lookup", name, policy.ActViewProject)); err != nil {
			return Ref{}, Attr{}, err
		}
		for _, d := range dirs {
			if d.name == name {
				r := Ref{Kind: d.kind}
				return r, t.attr(c, r, Resource{}, nil), nil
			}
		}
		return Ref{}, Attr{}, ErrNotFound
	case classKindDir:
		if _, err := t.resolve(c, "lookup", dir); err != nil {
			return Ref{}, Attr{}, err
		}
		res, err := t.resolve(c, "lookup", Ref{Kind: dir.Kind, Name: name})
		if err != nil {
			return Ref{}, Attr{}, err
		}
		r := Ref{Kind: res.Kind, Name: res.Name, ID: res.ID}
		return r, t.attr(c, r, res, nil), nil
	case classResourceDir:
		if _, err := t.openResourceDir(c, "lookup", dir); err != nil {
			return Ref{}, Attr{}, err
		}
		return Ref{}, Attr{}, ErrNotFound
	default:
		return Ref{}, Attr{}, ErrNotDir
	}
}

// Readdir lists dir: the entries the caller may view, sorted by name within
// a kind directory.
func (t *Tree) Readdir(c Caller, dir Ref) ([]DirEntry, error) {
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
			if t.may(c, t.onResource("readdir", res, policy.ActViewResource)) {
				es = append(es, DirEntry{Name: res.Name, Ref: Ref{Kind: res.Kind, Name: res.Name, ID: res.ID}})
			}
		}
		return es, nil
	case classResourceDir:
		_, err := t.openResourceDir(c, "readdir", dir)
		return nil, err
	default:
		return nil, ErrNotDir
	}
}

// openResourceDir decides looking into a dataset or connector, which is
// reading its data. Its contents are not served by this tree: it is empty
// here, and the dataset and S3 layers fill it.
func (t *Tree) openResourceDir(c Caller, op string, dir Ref) (Resource, error) {
	res, err := t.resolve(c, op, dir)
	if err != nil {
		return res, err
	}
	_, err = t.authorize(c, t.onResource(op, res, policy.ActUseResource))
	return res, err
}

// intoResourceDir answers an attempt to create, remove or rename something
// inside a dataset or connector directory, whose contents this tree does
// not serve.
func (t *Tree) intoResourceDir(c Caller, op string, dir Ref) error {
	res, err := t.resolve(c, op, dir)
	switch {
	case err != nil:
		return err
	case res.Published:
		return ErrReadOnly
	default:
		return ErrNotSupported
	}
}

// Access answers access(2) for mask (MayRead|MayWrite|MayExec; 0 asks
// whether r exists) with the same decisions the operations take.
func (t *Tree) Access(c Caller, r Ref, mask uint32) error {
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
		case !creatable(r.Kind):
			err = ErrDenied
		default:
			_, err = t.authorize(c, t.onProject("access", r.Path(), policy.ActCreateResource))
		}
	case classResourceDir:
		switch {
		case mask&MayWrite != 0 && res.Published:
			err = ErrReadOnly
		case mask&MayWrite != 0:
			err = ErrDenied // its contents are not served here
		default:
			_, err = t.authorize(c, t.onResource("access", res, policy.ActUseResource))
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
	}
	return err
}

// authorizeEdit decides changing res: a published resource is read-only
// here whoever asks; otherwise policy decides edit-resource.
func (t *Tree) authorizeEdit(c Caller, op string, res Resource) (principal, error) {
	if res.Published {
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

// Open opens the secret r. Reading needs use-resource, writing edit-resource
// (a published secret is read-only); both are asked again on every read and
// write of the handle.
func (t *Tree) Open(c Caller, r Ref, m OpenMode) (*Handle, error) {
	if r.class() != classSecret {
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

// Create creates the secret name in dir and opens it. The secret exists in
// the store, empty, as soon as Create returns, so that every other caller
// and node sees the file the kernel now shows; the value written follows
// on flush.
func (t *Tree) Create(ctx context.Context, c Caller, dir Ref, name string, m OpenMode) (Ref, Attr, *Handle, error) {
	if dir.class() == classResourceDir {
		return Ref{}, Attr{}, nil, t.intoResourceDir(c, "create", dir)
	}
	if _, err := t.resolve(c, "create", dir); err != nil {
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
// does. Nothing else is created with mkdir.
func (t *Tree) Mkdir(ctx context.Context, c Caller, dir Ref, name string) (Ref, Attr, error) {
	if dir.class() == classResourceDir {
		return Ref{}, Attr{}, t.intoResourceDir(c, "mkdir", dir)
	}
	if _, err := t.resolve(c, "mkdir", dir); err != nil {
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
	return r, t.attr(c, r, res, nil), nil
}

// Unlink deletes the secret name, as `sphere secret delete` does.
func (t *Tree) Unlink(ctx context.Context, c Caller, dir Ref, name string) error {
	if dir.class() == classResourceDir {
		return t.intoResourceDir(c, "unlink", dir)
	}
	if _, err := t.resolve(c, "unlink", dir); err != nil {
		return err
	}
	if dir.class() != classKindDir || dir.Kind != KindSecret {
		return ErrNotPermitted // everything else is a directory or fixed
	}
	return t.remove(ctx, c, "unlink", Ref{Kind: KindSecret, Name: name})
}

// Rmdir deletes the dataset name, as deleting it with the CLI does.
// Connectors are deactivated and deleted with `sphere s3`, not by removing
// their directory, and the directories at the root are fixed.
func (t *Tree) Rmdir(ctx context.Context, c Caller, dir Ref, name string) error {
	if dir.class() == classResourceDir {
		return t.intoResourceDir(c, "rmdir", dir)
	}
	if _, err := t.resolve(c, "rmdir", dir); err != nil {
		return err
	}
	if dir.class() != classKindDir || dir.Kind != KindDataset {
		return ErrNotPermitted
	}
	return t.remove(ctx, c, "rmdir", Ref{Kind: KindDataset, Name: name})
}

func (t *Tree) remove(ctx context.Context, c Caller, op string, r Ref) error {
	res, err := t.resolve(c, op, r)
	if err != nil {
		return err
	}
	if res.Published {
		return ErrReadOnly
	}
	p, err := t.authorize(c, t.onResource(op, res, policy.ActDeleteResource))
	if err != nil {
		return err
	}
	sctx, cancel := storeContext(ctx)
	defer cancel()
	return t.store.DeleteResource(sctx, p.id, t.project, res.Kind, res.Name)
}

// Rename answers rename(2) of name in dir: ErrCrossDevice once the caller
// may see it, so that mv copies and deletes, each step decided on its own.
// The directories at the root are fixed.
func (t *Tree) Rename(c Caller, dir Ref, name string) error {
	switch dir.class() {
	case classResourceDir:
		return t.intoResourceDir(c, "rename", dir)
	case classKindDir:
		if _, err := t.resolve(c, "rename", dir); err != nil {
			return err
		}
		if _, err := t.resolve(c, "rename", Ref{Kind: dir.Kind, Name: name}); err != nil {
			return err
		}
		return ErrCrossDevice
	default:
		if _, err := t.resolve(c, "rename", dir); err != nil {
			return err
		}
		return ErrNotPermitted
	}
}

// MakeNode answers link, symlink and mknod in dir: the tree holds only its
// directories and secrets, so once the caller may see dir the answer is
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

// Setattr changes r: only a secret's size (truncate; through h when the
// kernel names an open handle). Modes and owners are never changed
// (ErrNotPermitted): they show each caller's rights and are not settings.
// Setting a secret's times is accepted from those who may edit it, and
// ignored: the store keeps the modification time. It returns r's
// attributes after the change.
func (t *Tree) Setattr(ctx context.Context, c Caller, r Ref, h *Handle, s SetAttr) (Attr, error) {
	res, err := t.resolve(c, "setattr", r)
	if err != nil {
		return Attr{}, err
	}
	switch {
	case s.Mode || s.Owner:
		return Attr{}, ErrNotPermitted
	case !s.SetSize && !s.Times:
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
