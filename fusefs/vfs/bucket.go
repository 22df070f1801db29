package vfs

import (
	"context"
	"errors"
	"hash/fnv"
	"sync"
	"time"

	"github.com/sphere-sandbox/sphere/policy"
)

// s3/NAME/...: the bucket of an activated S3 connector (SPEC §8). Objects
// are files, "/"-separated prefixes are directories.
//
// Who may do what:
//   - s3/NAME itself is there for those who may view the connector;
//   - everything inside it — looking up, listing, reading — is using the
//     connector (use-resource, ErrDenied without it), since it reaches the
//     bucket with the connector's credentials;
//   - changing anything (create, write, unlink, mkdir, rmdir, rename) is
//     edit-resource on a read-write connector of the project's own: a
//     read-only or published connector is ErrReadOnly whoever asks.
//
// Writing streams: a file opened with O_TRUNC (or created) is written
// straight to an ObjectWriter, sequentially, with nothing kept on disk and
// memory bounded by the writer. A write anywhere but at the end of what was
// written, or an open for writing without O_TRUNC, is ErrNotSupported
// (ENOTSUP): S3 replaces objects whole, and the tree does not fake random
// writes with a local copy. The object appears when it is committed:
//   - at close(2), when the descriptor closed is the last one of the
//     process that opened the file and something was written (a close by
//     another process that inherited the descriptor, or of a dup made
//     before writing, as shells do for `cmd > file`, commits nothing yet);
//   - at fsync(2);
//   - otherwise when the kernel releases the file, just after the last
//     close(2) returns (an empty file made with touch appears then).
// A write after the commit is ErrNotSupported.

// objectIno is the inode number of the object or prefix at path in the
// connector's bucket: a hash of both, with the top bit set (see entryIno).
func objectIno(connector policy.ID, path string, dir bool) uint64 {
	var b [9]byte
	for i := range 8 {
		b[i] = byte(uint64(connector) >> (8 * i))
	}
	if dir {
		b[8] = 1
	}
	h := fnv.New64a()
	h.Write(b[:])
	h.Write([]byte(path))
	return inoTop(h.Sum64())
}

func objectRef(res Resource, path string, dir bool) Ref {
	return Ref{Kind: KindS3, Name: res.Name, ID: res.ID, Sub: path, File: !dir, Ino: objectIno(res.ID, path, dir)}
}

// objectAttr is the object o as everyone sees it: owned by root, writable
// if the connector is, kept by the kernel for bucketTimeout (see the
// package comment).
func (t *Tree) objectAttr(res Resource, b Bucket, o ObjectInfo) Attr {
	a := Attr{Dir: o.Dir, Mtime: o.MTime, Perm: 0o444, Timeout: bucketTimeout}
	if o.Dir {
		a.Perm = 0o555
	} else {
		a.Size = o.Size
	}
	if a.Mtime.IsZero() {
		a.Mtime = t.born
	}
	if !res.Published && !b.ReadOnly() {
		a.Perm |= 0o200
	}
	return a
}

// bucketGateAttr is s3/NAME for the caller, who may view it (resolve has
// decided): r-x if it may use the connector, w if it may also change the
// bucket.
func (t *Tree) bucketGateAttr(ctx context.Context, c Caller, res Resource) Attr {
	look := t.may(c, t.onResource("getattr", res, policy.ActUseResource))
	write := false
	if look && !res.Published && t.buckets != nil && t.may(c, t.onResource("getattr", res, policy.ActEditResource)) {
		sctx, cancel := storeContext(ctx)
		defer cancel()
		b, err := t.buckets.Bucket(sctx, res.ID)
		write = err == nil && !b.ReadOnly()
	}
	return t.gateAttr(c, res, look, write)
}

// bucket resolves the connector r is in (or is) for the caller, who must
// view it (ErrNotFound) and use it (ErrDenied), and returns its bucket.
// Without Buckets, it is ErrNotSupported.
func (t *Tree) bucket(ctx context.Context, c Caller, op string, r Ref) (Resource, Bucket, error) {
	res, err := t.resolve(c, op, r)
	if err != nil {
		return res, nil, err
	}
	if _, err := t.authorize(c, t.onPath(op, res, r.Sub, policy.ActUseResource)); err != nil {
		return res, nil, err
	}
	if t.buckets == nil {
		return res, nil, ErrNotSupported
	}
	b, err := t.buckets.Bucket(ctx, res.ID)
	return res, b, err
}

// objectNode is bucket, and what is at r's path now (ErrNotFound if
// nothing, or something of another type). An object still being written
// through h is what h has written.
func (t *Tree) objectNode(ctx context.Context, c Caller, op string, r Ref, h OpenFile) (Resource, Bucket, ObjectInfo, error) {
	res, b, err := t.bucket(ctx, c, op, r)
	if err != nil || r.Sub == "" {
		return res, b, ObjectInfo{Dir: true}, err
	}
	o, err := b.Stat(ctx, r.Sub)
	if err == nil && o.Dir == r.File {
		err = ErrNotFound
	}
	if oh, ok := h.(*ObjectHandle); ok && errors.Is(err, ErrNotFound) {
		return res, b, oh.info, nil
	}
	return res, b, o, err
}

// authorizeBucketEdit decides changing path in the bucket b of res.
func (t *Tree) authorizeBucketEdit(c Caller, op string, res Resource, b Bucket, path string) (principal, error) {
	if res.Published || b.ReadOnly() {
		return principal{}, ErrReadOnly
	}
	return t.authorize(c, t.onPath(op, res, path, policy.ActEditResource))
}

func (t *Tree) bucketGetattr(ctx context.Context, c Caller, r Ref, h OpenFile) (Attr, error) {
	if r.Sub == "" {
		res, err := t.resolve(c, "getattr", r)
		if err != nil {
			return Attr{}, err
		}
		return t.bucketGateAttr(ctx, c, res), nil
	}
	sctx, cancel := storeContext(ctx)
	defer cancel()
	res, b, o, err := t.objectNode(sctx, c, "getattr", r, h)
	if err != nil {
		return Attr{}, err
	}
	a := t.objectAttr(res, b, o)
	if n, ok := pending(h); ok {
		a.Size = n
	}
	return a, nil
}

func (t *Tree) bucketLookup(ctx context.Context, c Caller, dir Ref, name string) (Ref, Attr, error) {
	sctx, cancel := storeContext(ctx)
	defer cancel()
	res, b, err := t.bucket(sctx, c, "lookup", dir)
	switch {
	case errors.Is(err, ErrNotSupported):
		return Ref{}, Attr{}, ErrNotFound // without Buckets, a bucket is empty
	case err != nil:
		return Ref{}, Attr{}, err
	case ValidEntryName(name) != nil:
		return Ref{}, Attr{}, ErrNotFound
	}
	path := dir.join(name)
	o, err := b.Stat(sctx, path)
	if err != nil {
		return Ref{}, Attr{}, err
	}
	return objectRef(res, path, o.Dir), t.objectAttr(res, b, o), nil
}

func (t *Tree) bucketReaddir(ctx context.Context, c Caller, dir Ref) ([]DirEntry, error) {
	sctx, cancel := storeContext(ctx)
	defer cancel()
	res, b, err := t.bucket(sctx, c, "readdir", dir)
	switch {
	case errors.Is(err, ErrNotSupported):
		return nil, nil
	case err != nil:
		return nil, err
	}
	os, err := b.List(sctx, dir.Sub)
	if err != nil {
		return nil, err
	}
	out := make([]DirEntry, 0, len(os))
	for _, o := range os {
		if ValidEntryName(o.Name) != nil {
			continue // a key no file can be named after ("a//b", "..")
		}
		path := dir.join(o.Name)
		out = append(out, DirEntry{Name: o.Name, Ref: objectRef(res, path, o.Dir), Attr: t.objectAttr(res, b, o)})
	}
	return out, nil
}

func (t *Tree) bucketAccess(ctx context.Context, c Caller, r Ref, mask uint32) error {
	if r.Sub == "" && mask == 0 {
		_, err := t.resolve(c, "access", r)
		return err
	}
	sctx, cancel := storeContext(ctx)
	defer cancel()
	res, b, o, err := t.objectNode(sctx, c, "access", r, nil)
	if err != nil || mask == 0 {
		return err
	}
	if mask&MayWrite != 0 {
		if _, err := t.authorizeBucketEdit(c, "access", res, b, r.Sub); err != nil {
			return err
		}
	}
	if !o.Dir && mask&MayExec != 0 {
		return ErrDenied
	}
	return nil // reading and searching are using, which bucket has decided
}

func (t *Tree) bucketOpen(ctx context.Context, c Caller, r Ref, m OpenMode) (OpenFile, error) {
	sctx, cancel := storeContext(ctx)
	defer cancel()
	res, b, o, err := t.objectNode(sctx, c, "open", r, nil)
	switch {
	case err != nil:
		return nil, err
	case o.Dir:
		return nil, ErrIsDir
	}
	h := &ObjectHandle{tree: t, res: res, bucket: b, path: r.Sub, info: o}
	if m.Write {
		if _, err := t.authorizeBucketEdit(c, "open", res, b, r.Sub); err != nil {
			return nil, err
		}
		if !m.Truncate {
			return nil, ErrNotSupported // objects are replaced whole
		}
		if h.writer, err = b.Create(sctx, r.Sub); err != nil {
			return nil, err
		}
		h.opener, h.info.Size = c.PID, 0
		return h, nil
	}
	if h.reader, err = b.Open(sctx, r.Sub); err != nil {
		return nil, err
	}
	return h, nil
}

func (t *Tree) bucketCreate(ctx context.Context, c Caller, dir Ref, name string, m OpenMode) (Ref, Attr, OpenFile, error) {
	sctx, cancel := storeContext(ctx)
	defer cancel()
	res, b, err := t.bucket(sctx, c, "create", dir)
	if err != nil {
		return Ref{}, Attr{}, nil, err
	}
	if err := ValidEntryName(name); err != nil {
		return Ref{}, Attr{}, nil, err
	}
	path := dir.join(name)
	if _, err := t.authorizeBucketEdit(c, "create", res, b, path); err != nil {
		return Ref{}, Attr{}, nil, err
	}
	o, err := b.Stat(sctx, path)
	switch {
	case err == nil && m.Exclusive:
		return Ref{}, Attr{}, nil, ErrExists
	case err == nil && o.Dir:
		return Ref{}, Attr{}, nil, ErrIsDir
	case err != nil && !errors.Is(err, ErrNotFound):
		return Ref{}, Attr{}, nil, err
	}
	w, err := b.Create(sctx, path)
	if err != nil {
		return Ref{}, Attr{}, nil, err
	}
	o = ObjectInfo{Name: name, MTime: time.Now().UTC()}
	h := &ObjectHandle{tree: t, res: res, bucket: b, path: path, info: o, writer: w, opener: c.PID}
	return objectRef(res, path, false), t.objectAttr(res, b, o), h, nil
}

func (t *Tree) bucketMkdir(ctx context.Context, c Caller, dir Ref, name string) (Ref, Attr, error) {
	sctx, cancel := storeContext(ctx)
	defer cancel()
	res, b, err := t.bucket(sctx, c, "mkdir", dir)
	if err != nil {
		return Ref{}, Attr{}, err
	}
	if err := ValidEntryName(name); err != nil {
		return Ref{}, Attr{}, err
	}
	path := dir.join(name)
	if _, err := t.authorizeBucketEdit(c, "mkdir", res, b, path); err != nil {
		return Ref{}, Attr{}, err
	}
	switch _, err := b.Stat(sctx, path); {
	case err == nil:
		return Ref{}, Attr{}, ErrExists
	case !errors.Is(err, ErrNotFound):
		return Ref{}, Attr{}, err
	}
	if err := b.Mkdir(sctx, path); err != nil {
		return Ref{}, Attr{}, err
	}
	o := ObjectInfo{Name: name, Dir: true, MTime: time.Now().UTC()}
	return objectRef(res, path, true), t.objectAttr(res, b, o), nil
}

// bucketRemove is unlink (op "unlink", objects) and rmdir ("rmdir", empty
// prefixes) of name in dir.
func (t *Tree) bucketRemove(ctx context.Context, c Caller, op string, dir Ref, name string) error {
	sctx, cancel := storeContext(ctx)
	defer cancel()
	res, b, err := t.bucket(sctx, c, op, dir)
	if err != nil {
		return err
	}
	if ValidEntryName(name) != nil {
		return ErrNotFound
	}
	path := dir.join(name)
	o, err := b.Stat(sctx, path)
	if err == nil {
		err = removable(op, o.Dir)
	}
	if err != nil {
		return err
	}
	if _, err := t.authorizeBucketEdit(c, op, res, b, path); err != nil {
		return err
	}
	return b.Remove(sctx, path)
}

// bucketRename renames the object name in dir to newName in newDir, in the
// same bucket. A prefix is not renamed in place (ErrCrossDevice: mv copies
// it object by object, and deletes).
func (t *Tree) bucketRename(ctx context.Context, c Caller, dir Ref, name string, newDir Ref, newName string, flags uint32) (Ref, error) {
	sctx, cancel := storeContext(ctx)
	defer cancel()
	res, b, err := t.bucket(sctx, c, "rename", dir)
	if err != nil {
		return Ref{}, err
	}
	if ValidEntryName(name) != nil {
		return Ref{}, ErrNotFound
	}
	from, to := dir.join(name), newDir.join(newName)
	o, err := b.Stat(sctx, from)
	switch {
	case err != nil:
		return Ref{}, err
	case o.Dir:
		return Ref{}, ErrCrossDevice
	}
	if err := ValidEntryName(newName); err != nil {
		return Ref{}, err
	}
	if flags&RenameExchange != 0 {
		return Ref{}, ErrNotSupported
	}
	if _, err := t.authorizeBucketEdit(c, "rename", res, b, from); err != nil {
		return Ref{}, err
	}
	switch dst, err := b.Stat(sctx, to); {
	case err == nil && flags&RenameNoReplace != 0:
		return Ref{}, ErrExists
	case err == nil && dst.Dir:
		return Ref{}, ErrIsDir
	case err != nil && !errors.Is(err, ErrNotFound):
		return Ref{}, err
	}
	if from != to {
		if err := b.Rename(sctx, from, to); err != nil {
			return Ref{}, err
		}
	}
	return objectRef(res, to, false), nil
}

func (t *Tree) bucketSetattr(ctx context.Context, c Caller, r Ref, h OpenFile, s SetAttr) (Attr, error) {
	if r.Sub == "" {
		if _, err := t.resolve(c, "setattr", r); err != nil {
			return Attr{}, err
		}
		if s.Mode || s.Owner || s.SetSize || s.Times {
			return Attr{}, ErrNotPermitted // the gate's attributes are the tree's
		}
		return t.bucketGetattr(ctx, c, r, h)
	}
	sctx, cancel := storeContext(ctx)
	defer cancel()
	res, b, o, err := t.objectNode(sctx, c, "setattr", r, h)
	switch {
	case err != nil:
		return Attr{}, err
	case s.Mode || s.Owner:
		return Attr{}, ErrNotPermitted
	case !s.SetSize && !s.Times:
	case s.SetSize && o.Dir:
		return Attr{}, ErrIsDir
	case s.SetSize && h != nil:
		err = h.Truncate(ctx, c, s.Size)
	case s.SetSize && s.Size == 0: // truncate(2) to nothing: an empty object replaces it
		if _, err = t.authorizeBucketEdit(c, "truncate", res, b, r.Sub); err == nil {
			var w ObjectWriter
			if w, err = b.Create(sctx, r.Sub); err == nil {
				err = w.Close()
			}
		}
	case s.SetSize:
		return Attr{}, ErrNotSupported
	default: // touch: accepted from those who may change the object, and ignored
		_, err = t.authorizeBucketEdit(c, "setattr", res, b, r.Sub)
	}
	if err != nil {
		return Attr{}, err
	}
	return t.bucketGetattr(ctx, c, r, h)
}

// ObjectHandle is an open object: one ObjectReader for reading (which
// holds its readahead), or one ObjectWriter for writing (see the top of
// this file). Every read and write asks policy for its caller. An
// ObjectHandle is safe for concurrent use.
type ObjectHandle struct {
	tree   *Tree
	res    Resource
	bucket Bucket
	path   string
	info   ObjectInfo   // as it was at open
	reader ObjectReader // opened for reading
	opener uint32       // opened for writing: the process whose close commits

	mu      sync.Mutex
	writer  ObjectWriter // opened for writing
	written int64
	done    bool // the writer is closed or aborted
}

var _ OpenFile = (*ObjectHandle)(nil)

// Caching: pages read are kept while the file is open; an object may be
// replaced between two opens.
func (h *ObjectHandle) Caching() Caching { return CacheOpen }

func (h *ObjectHandle) pending() (int64, bool) {
	if h.writer == nil {
		return 0, false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.written, true
}

func (h *ObjectHandle) Read(ctx context.Context, c Caller, dest []byte, off int64) (int, error) {
	if h.reader == nil {
		return 0, ErrNotSupported // what is being written cannot be read back
	}
	t := h.tree
	if _, err := t.authorize(c, t.onPath("read", h.res, h.path, policy.ActUseResource)); err != nil {
		return 0, err
	}
	return readAt(h.reader, dest, off)
}

func (h *ObjectHandle) Write(ctx context.Context, c Caller, data []byte, off int64) (int, error) {
	if h.writer == nil {
		return 0, ErrReadOnly
	}
	if _, err := h.tree.authorizeBucketEdit(c, "write", h.res, h.bucket, h.path); err != nil {
		return 0, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.done || off != h.written {
		return 0, ErrNotSupported
	}
	n, err := h.writer.WriteAt(data, off)
	h.written += int64(n)
	if err != nil {
		h.done = true
		h.writer.Abort()
	}
	return n, err
}

// Truncate accepts only what changes nothing: the size written so far.
func (h *ObjectHandle) Truncate(ctx context.Context, c Caller, size int64) error {
	if h.writer == nil {
		return ErrReadOnly
	}
	if _, err := h.tree.authorizeBucketEdit(c, "truncate", h.res, h.bucket, h.path); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.done || size != h.written {
		return ErrNotSupported
	}
	return nil
}

// Flush commits the object at the close of a descriptor of the process
// that opened it, once something was written; otherwise it leaves the
// commit to a later close, or to Release.
func (h *ObjectHandle) Flush(ctx context.Context, c Caller) error {
	if h.writer == nil {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.done || c.PID != h.opener || h.written == 0 {
		return nil
	}
	return h.commit(c)
}

// Fsync commits the object.
func (h *ObjectHandle) Fsync(ctx context.Context, c Caller) error {
	if h.writer == nil {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.done {
		return nil
	}
	return h.commit(c)
}

// commit closes the writer, for c, decided anew: if c may no longer change
// the bucket, what was written is dropped.
func (h *ObjectHandle) commit(c Caller) error {
	h.done = true
	if _, err := h.tree.authorizeBucketEdit(c, "commit", h.res, h.bucket, h.path); err != nil {
		h.writer.Abort()
		return err
	}
	return h.writer.Close()
}

// Release commits an object not committed yet (decided for the callers of
// its writes, the kernel names none here) and closes the reader.
func (h *ObjectHandle) Release() error {
	var err error
	if h.writer != nil {
		h.mu.Lock()
		if !h.done {
			h.done = true
			err = h.writer.Close()
		}
		h.mu.Unlock()
	}
	if h.reader != nil {
		h.reader.Close()
	}
	return err
}
