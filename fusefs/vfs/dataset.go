package vfs

import (
	"context"
	"errors"
	"hash/fnv"
	"io"
	"os"
	"sync"
	"time"

	"github.com/sphere-sandbox/sphere/policy"
)

// datasets/NAME/...: the files of a dataset (SPEC §9); models/NAME/...:
// the files of a model, stored and served alike, but never changed through
// the mount (readOnlyKind), as a sealed dataset's.
//
// Who may do what:
//   - see the tree (lookup, stat, list): view-resource on the dataset, which
//     every operation checks at the gate (resolve): a caller who may not
//     view the dataset finds nothing there (ErrNotFound);
//   - read a file: use-resource, at open and at every read that reaches the
//     tree;
//   - change anything (create, write, truncate, mkdir, unlink, rmdir):
//     edit-resource, while the dataset is initializing and is the project's
//     own. A sealed dataset, or one published into the project, is
//     ErrReadOnly whoever asks.
//
// Writes go to a spool file per open handle (random writes, truncation,
// appends: what a local file takes), which flush and fsync commit whole
// (Datasets.DatasetCommit). A write that would take the dataset past its
// size limit is refused at once (ErrNoSpace).

// commitTimeout bounds storing a file's content: chunking and uploading
// take longer than a store call, but not for ever.
const commitTimeout = 30 * time.Minute

// entryIno is the inode number of a dataset's entry: its number in the
// dataset mixed with the dataset's ID, with the top bit set, so that it
// meets neither another dataset's entries nor the numbers of the nodes
// above the gates (resource IDs).
func entryIno(dataset policy.ID, n uint64) uint64 {
	var b [16]byte
	for i := range 8 {
		b[i] = byte(uint64(dataset) >> (8 * i))
		b[8+i] = byte(n >> (8 * i))
	}
	h := fnv.New64a()
	h.Write(b[:])
	return inoTop(h.Sum64())
}

func inoTop(n uint64) uint64 {
	n |= 1 << 63
	if n == ^uint64(0) { // reserved by the kernel
		n--
	}
	return n
}

// onPath is a query about the resource res for an operation on path inside
// it (for the audit record).
func (t *Tree) onPath(op string, res Resource, path string, a policy.Action) query {
	q := t.onResource(op, res, a)
	q.path = Ref{Kind: res.Kind, Name: res.Name, Sub: path}.Path()
	return q
}

// datasetView is how one caller sees the entries of one dataset: the same
// for all its entries, so that a listing asks policy once, not per entry.
type datasetView struct {
	res       Resource
	caller    Caller
	sealed    bool
	use, edit bool // initializing datasets: the caller may read, may change the files
	born      time.Time
}

func (t *Tree) datasetView(c Caller, res Resource) (datasetView, error) {
	v := datasetView{res: res, caller: c, born: t.born}
	sealed, _, err := t.datasets.DatasetInfo(res.ID)
	if err != nil {
		return v, err
	}
	v.sealed = sealed
	if !sealed {
		v.use = t.may(c, t.onResource("getattr", res, policy.ActUseResource))
		v.edit = !readOnlyHere(res) && t.may(c, t.onResource("getattr", res, policy.ActEditResource))
	}
	return v, nil
}

// attr is the entry e as the view's caller sees it. Below a sealed
// dataset's gate it is the same for everyone: owned by root, read-only,
// kept by the kernel for sealedTimeout (see the package comment).
// Otherwise it is the caller's: its owner, with r, w as its rights are.
func (v datasetView) attr(e DatasetEntry) Attr {
	a := Attr{Dir: e.Dir, Mtime: e.MTime}
	if !e.Dir {
		a.Size = e.Size
	}
	if a.Mtime.IsZero() {
		a.Mtime = v.born
	}
	if v.sealed {
		a.Perm = 0o444
		if e.Dir {
			a.Perm = 0o555
		}
		a.Timeout = sealedTimeout
		return a
	}
	a.UID, a.GID = v.caller.UID, v.caller.GID
	switch {
	case e.Dir:
		a.Perm = 0o555 // listing is viewing, which the gate has decided
	case v.use:
		a.Perm = 0o444
	}
	if v.edit {
		a.Perm |= 0o200
	}
	return a
}

func (v datasetView) ref(path string, e DatasetEntry) Ref {
	return Ref{Kind: v.res.Kind, Name: v.res.Name, ID: v.res.ID, Sub: path, File: !e.Dir, Ino: entryIno(v.res.ID, e.Ino)}
}

// datasetGateAttr is datasets/NAME for the caller, who may view it (resolve
// has decided): writable for those who may change it now.
func (t *Tree) datasetGateAttr(c Caller, res Resource) Attr {
	write := false
	if !readOnlyHere(res) && t.datasets != nil && t.may(c, t.onResource("getattr", res, policy.ActEditResource)) {
		sealed, _, err := t.datasets.DatasetInfo(res.ID)
		write = err == nil && !sealed
	}
	return t.gateAttr(c, res, true, write)
}

// authorizeDatasetEdit decides changing path in the dataset res: a
// published or sealed dataset, or a model, is read-only whoever asks;
// otherwise policy decides edit-resource. It returns the bytes the dataset
// may still grow by (-1: no limit).
func (t *Tree) authorizeDatasetEdit(c Caller, op string, res Resource, path string) (principal, int64, error) {
	if readOnlyHere(res) {
		return principal{}, 0, ErrReadOnly
	}
	if t.datasets == nil {
		return principal{}, 0, ErrNotSupported
	}
	sealed, free, err := t.datasets.DatasetInfo(res.ID)
	switch {
	case err != nil:
		return principal{}, 0, err
	case sealed:
		return principal{}, 0, ErrReadOnly
	}
	p, err := t.authorize(c, t.onPath(op, res, path, policy.ActEditResource))
	return p, free, err
}

// datasetNode resolves r, the gate or a node below it, for the caller: the
// dataset, which the caller may view, and what is at r's path now
// (ErrNotFound if nothing, or something of another type). A file removed
// while h is open on it is what it was when h opened it: fstat of an
// unlinked file still answers.
func (t *Tree) datasetNode(c Caller, op string, r Ref, h OpenFile) (Resource, DatasetEntry, error) {
	res, err := t.resolve(c, op, r)
	if err != nil || r.Sub == "" {
		return res, DatasetEntry{Dir: true}, err
	}
	if t.datasets == nil {
		return res, DatasetEntry{}, ErrNotFound
	}
	e, err := t.datasets.DatasetStat(res.ID, r.Sub)
	if err == nil && e.Dir == r.File {
		err = ErrNotFound
	}
	if dh, ok := h.(*DatasetHandle); ok && errors.Is(err, ErrNotFound) {
		return res, dh.lastEntry(), errUnlinked
	}
	return res, e, err
}

func (t *Tree) datasetGetattr(c Caller, r Ref, h OpenFile) (Attr, error) {
	res, e, err := t.datasetNode(c, "getattr", r, h)
	unlinked := err == errUnlinked
	switch {
	case unlinked:
	case err != nil:
		return Attr{}, err
	case r.Sub == "":
		return t.datasetGateAttr(c, res), nil
	}
	v, err := t.datasetView(c, res)
	if err != nil {
		return Attr{}, err
	}
	a := v.attr(e)
	if n, ok := pending(h); ok {
		a.Size = n
	}
	if unlinked {
		a.Unlinked, a.Timeout = true, 0
	}
	return a, nil
}

func (t *Tree) datasetLookup(c Caller, dir Ref, name string) (Ref, Attr, error) {
	res, err := t.resolve(c, "lookup", dir)
	if err != nil {
		return Ref{}, Attr{}, err
	}
	if t.datasets == nil || ValidEntryName(name) != nil {
		return Ref{}, Attr{}, ErrNotFound
	}
	path := dir.join(name)
	return t.datasetEntryOf(c, res, path)
}

// datasetEntryOf is what the store has at path in res, as the caller sees it.
func (t *Tree) datasetEntryOf(c Caller, res Resource, path string) (Ref, Attr, error) {
	e, err := t.datasets.DatasetStat(res.ID, path)
	if err != nil {
		return Ref{}, Attr{}, err
	}
	v, err := t.datasetView(c, res)
	if err != nil {
		return Ref{}, Attr{}, err
	}
	return v.ref(path, e), v.attr(e), nil
}

func (t *Tree) datasetReaddir(c Caller, dir Ref) ([]DirEntry, error) {
	res, err := t.resolve(c, "readdir", dir)
	if err != nil || t.datasets == nil {
		return nil, err
	}
	es, err := t.datasets.DatasetList(res.ID, dir.Sub)
	if err != nil {
		return nil, err
	}
	v, err := t.datasetView(c, res)
	if err != nil {
		return nil, err
	}
	out := make([]DirEntry, 0, len(es))
	for _, e := range es {
		path := dir.join(e.Name)
		out = append(out, DirEntry{Name: e.Name, Ref: v.ref(path, e), Attr: v.attr(e)})
	}
	return out, nil
}

func (t *Tree) datasetAccess(c Caller, r Ref, mask uint32) error {
	res, e, err := t.datasetNode(c, "access", r, nil)
	if err != nil || mask == 0 {
		return err
	}
	if mask&MayWrite != 0 {
		if _, _, err := t.authorizeDatasetEdit(c, "access", res, r.Sub); err != nil {
			return err
		}
	}
	switch {
	case e.Dir:
		return nil // listing and searching are viewing, which resolve has decided
	case mask&MayExec != 0:
		return ErrDenied
	case mask&MayRead != 0:
		_, err = t.authorize(c, t.onPath("access", res, r.Sub, policy.ActUseResource))
	}
	return err
}

func (t *Tree) datasetOpen(ctx context.Context, c Caller, r Ref, m OpenMode) (OpenFile, error) {
	res, e, err := t.datasetNode(c, "open", r, nil)
	switch {
	case err != nil:
		return nil, err
	case e.Dir:
		return nil, ErrIsDir
	}
	return t.openDatasetFile(ctx, c, res, r.Sub, e, m)
}

// openDatasetFile opens the file e at path in res, which the caller may
// view, after asking policy for what m needs.
func (t *Tree) openDatasetFile(ctx context.Context, c Caller, res Resource, path string, e DatasetEntry, m OpenMode) (*DatasetHandle, error) {
	if m.Read {
		if _, err := t.authorize(c, t.onPath("open", res, path, policy.ActUseResource)); err != nil {
			return nil, err
		}
	}
	h := &DatasetHandle{tree: t, res: res, path: path, entry: e, base: e.Size}
	if m.Write {
		p, _, err := t.authorizeDatasetEdit(c, "open", res, path)
		if err != nil {
			return nil, err
		}
		h.writable = true
		if m.Truncate {
			if err := h.newSpool(); err != nil {
				return nil, err
			}
			h.dirty, h.writer = true, p.id
		}
		return h, nil
	}
	sealed, _, err := t.datasets.DatasetInfo(res.ID)
	if err != nil {
		return nil, err
	}
	if err := h.openContent(ctx); err != nil {
		return nil, err
	}
	h.sealed = sealed
	return h, nil
}

func (t *Tree) datasetCreate(ctx context.Context, c Caller, dir Ref, name string, m OpenMode) (Ref, Attr, OpenFile, error) {
	res, err := t.resolve(c, "create", dir)
	if err != nil {
		return Ref{}, Attr{}, nil, err
	}
	if err := ValidEntryName(name); err != nil {
		return Ref{}, Attr{}, nil, err
	}
	path := dir.join(name)
	p, _, err := t.authorizeDatasetEdit(c, "create", res, path)
	if err != nil {
		return Ref{}, Attr{}, nil, err
	}
	if m.Read {
		if _, err := t.authorize(c, t.onPath("create", res, path, policy.ActUseResource)); err != nil {
			return Ref{}, Attr{}, nil, err
		}
	}
	e, err := t.datasets.DatasetStat(res.ID, path)
	var h *DatasetHandle
	switch {
	case err == nil && m.Exclusive:
		return Ref{}, Attr{}, nil, ErrExists
	case err == nil && e.Dir:
		return Ref{}, Attr{}, nil, ErrIsDir
	case err == nil: // created by someone else since the kernel looked
		h, err = t.openDatasetFile(ctx, c, res, path, e, m)
	case errors.Is(err, ErrNotFound):
		// The file exists, empty, as soon as Create returns, so that every
		// other caller and node sees the file the kernel now shows.
		h = &DatasetHandle{tree: t, res: res, path: path, writable: true}
		if err = h.newSpool(); err == nil {
			err = h.commit(ctx, p.id)
		}
		if err == nil {
			e, err = t.datasets.DatasetStat(res.ID, path)
		}
	}
	if err != nil {
		if h != nil {
			h.Release()
		}
		return Ref{}, Attr{}, nil, err
	}
	v, err := t.datasetView(c, res)
	if err != nil {
		h.Release()
		return Ref{}, Attr{}, nil, err
	}
	return v.ref(path, e), v.attr(e), h, nil
}

func (t *Tree) datasetMkdir(ctx context.Context, c Caller, dir Ref, name string) (Ref, Attr, error) {
	res, err := t.resolve(c, "mkdir", dir)
	if err != nil {
		return Ref{}, Attr{}, err
	}
	if err := ValidEntryName(name); err != nil {
		return Ref{}, Attr{}, err
	}
	path := dir.join(name)
	p, _, err := t.authorizeDatasetEdit(c, "mkdir", res, path)
	if err != nil {
		return Ref{}, Attr{}, err
	}
	sctx, cancel := storeContext(ctx)
	defer cancel()
	if err := t.datasets.DatasetMkdir(sctx, p.id, res.ID, path); err != nil {
		return Ref{}, Attr{}, err
	}
	return t.datasetEntryOf(c, res, path)
}

// datasetRemove is unlink (op "unlink", files) and rmdir ("rmdir", empty
// directories) of name in dir.
func (t *Tree) datasetRemove(ctx context.Context, c Caller, op string, dir Ref, name string) error {
	res, err := t.resolve(c, op, dir)
	if err != nil {
		return err
	}
	if t.datasets == nil || ValidEntryName(name) != nil {
		return ErrNotFound
	}
	path := dir.join(name)
	e, err := t.datasets.DatasetStat(res.ID, path)
	if err == nil {
		err = removable(op, e.Dir)
	}
	if err != nil {
		return err
	}
	p, _, err := t.authorizeDatasetEdit(c, op, res, path)
	if err != nil {
		return err
	}
	sctx, cancel := storeContext(ctx)
	defer cancel()
	return t.datasets.DatasetRemove(sctx, p.id, res.ID, path)
}

func (t *Tree) datasetSetattr(ctx context.Context, c Caller, r Ref, h OpenFile, s SetAttr) (Attr, error) {
	res, e, err := t.datasetNode(c, "setattr", r, h)
	if err == errUnlinked {
		err = nil
	}
	switch {
	case err != nil:
		return Attr{}, err
	case s.Mode || s.Owner:
		return Attr{}, ErrNotPermitted
	case !s.SetSize && !s.Times:
	case r.Sub == "":
		return Attr{}, ErrNotPermitted // the gate's times are the store's
	case s.SetSize && e.Dir:
		return Attr{}, ErrIsDir
	case s.SetSize && h != nil:
		err = h.Truncate(ctx, c, s.Size)
	case s.SetSize:
		err = t.datasetTruncate(ctx, c, res, r.Sub, e, s.Size)
	default: // touch: accepted from those who may change the file, and ignored
		_, _, err = t.authorizeDatasetEdit(c, "setattr", res, r.Sub)
	}
	if err != nil {
		return Attr{}, err
	}
	return t.datasetGetattr(c, r, h)
}

// datasetTruncate is truncate(2) of a file no handle names.
func (t *Tree) datasetTruncate(ctx context.Context, c Caller, res Resource, path string, e DatasetEntry, size int64) error {
	h, err := t.openDatasetFile(ctx, c, res, path, e, OpenMode{Write: true, Truncate: size == 0})
	if err != nil {
		return err
	}
	defer h.Release()
	if err := h.Truncate(ctx, c, size); err != nil {
		return err
	}
	return h.Flush(ctx, c)
}

// DatasetHandle is an open file of a dataset.
//
// Reading: policy is asked at open and at every read that reaches the
// tree. A sealed dataset's file is read from its content as opened (the
// kernel keeps its pages, or reads the local copy itself: passthrough);
// an initializing one's from the content committed when it was opened, or
// from the handle's own changes.
//
// Writing: the first change copies the committed content to a spool file
// (unless the open truncated it), where writes and truncations go, each
// decided for its caller and refused past the dataset's size limit
// (ErrNoSpace). Flush and Fsync commit the spool whole, for their caller;
// Release commits what is still uncommitted (a write through a shared
// mapping after the last close) as the principal who wrote it. A
// DatasetHandle is safe for concurrent use.
type DatasetHandle struct {
	tree     *Tree
	res      Resource // as it was at open
	path     string
	writable bool // opened for writing
	sealed   bool // opened for reading in a sealed dataset: content never changes

	mu      sync.Mutex
	entry   DatasetEntry // as it was at open, or at this handle's last commit
	content FileContent  // the committed content, when needed (at open for reading)
	spool   *os.File     // the content as this handle changed it; nil until the first change
	size    int64        // the spool's length
	base    int64        // the committed length a commit replaces: what the size limit counts
	dirty   bool         // the spool has changes not committed
	writer  policy.ID    // who made them
}

var _ OpenFile = (*DatasetHandle)(nil)

// Caching: a sealed file's pages are kept across opens; others' are not.
func (h *DatasetHandle) Caching() Caching {
	if h.sealed {
		return CacheKeep
	}
	return CacheOpen
}

// LocalFile is the local file holding a sealed file's whole content, if
// the Datasets has one: the kernel may read it directly (passthrough).
func (h *DatasetHandle) LocalFile() (*os.File, bool) {
	if !h.sealed {
		return nil, false
	}
	return h.content.LocalFile()
}

func (h *DatasetHandle) pending() (int64, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.size, h.spool != nil
}

// openContent opens the committed content, once.
func (h *DatasetHandle) openContent(ctx context.Context) error {
	if h.content != nil {
		return nil
	}
	sctx, cancel := storeContext(ctx)
	defer cancel()
	content, err := h.tree.datasets.DatasetOpen(sctx, h.res.ID, h.path)
	if err != nil {
		return err
	}
	h.content = content
	return nil
}

// newSpool starts an empty spool, in place of any other.
func (h *DatasetHandle) newSpool() error {
	f, err := os.CreateTemp(h.tree.datasets.SpoolDir(), ".sphere-spool-*")
	if err != nil {
		return err
	}
	os.Remove(f.Name()) // it lives as long as the descriptor
	if h.spool != nil {
		h.spool.Close()
	}
	h.spool, h.size = f, 0
	return nil
}

// ensureSpool makes the spool hold the committed content, the first time
// the handle changes it.
func (h *DatasetHandle) ensureSpool(ctx context.Context) error {
	if h.spool != nil {
		return nil
	}
	if err := h.openContent(ctx); err != nil {
		return err
	}
	if err := h.newSpool(); err != nil {
		return err
	}
	n, err := io.Copy(h.spool, io.NewSectionReader(h.content, 0, 1<<62))
	if err != nil {
		h.spool.Close()
		h.spool = nil
		return err
	}
	h.size = n
	return nil
}

func readAt(r io.ReaderAt, dest []byte, off int64) (int, error) {
	n, err := r.ReadAt(dest, off)
	if err == io.EOF {
		err = nil
	}
	return n, err
}

func (h *DatasetHandle) Read(ctx context.Context, c Caller, dest []byte, off int64) (int, error) {
	t := h.tree
	if _, err := t.authorize(c, t.onPath("read", h.res, h.path, policy.ActUseResource)); err != nil {
		return 0, err
	}
	if h.sealed { // content is set at open and never changes: no lock, reads in parallel
		return readAt(h.content, dest, off)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.spool != nil {
		return readAt(h.spool, dest, off)
	}
	if err := h.openContent(ctx); err != nil {
		return 0, err
	}
	return readAt(h.content, dest, off)
}

// grow checks that the file may become size bytes long, given free bytes
// left under the dataset's limit.
func (h *DatasetHandle) grow(size, free int64) error {
	if size > h.size && free >= 0 && size-h.base > free {
		return ErrNoSpace
	}
	return nil
}

func (h *DatasetHandle) Write(ctx context.Context, c Caller, data []byte, off int64) (int, error) {
	if !h.writable {
		return 0, ErrReadOnly
	}
	p, free, err := h.tree.authorizeDatasetEdit(c, "write", h.res, h.path)
	if err != nil {
		return 0, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.ensureSpool(ctx); err != nil {
		return 0, err
	}
	if err := h.grow(off+int64(len(data)), free); err != nil {
		return 0, err
	}
	n, err := h.spool.WriteAt(data, off)
	if n > 0 {
		h.size = max(h.size, off+int64(n))
		h.dirty, h.writer = true, p.id
	}
	return n, err
}

func (h *DatasetHandle) Truncate(ctx context.Context, c Caller, size int64) error {
	if !h.writable {
		return ErrReadOnly
	}
	p, free, err := h.tree.authorizeDatasetEdit(c, "truncate", h.res, h.path)
	if err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if size == 0 {
		err = h.newSpool() // needs nothing of the old content
	} else {
		err = h.ensureSpool(ctx)
	}
	if err != nil {
		return err
	}
	if err := h.grow(size, free); err != nil {
		return err
	}
	if err := h.spool.Truncate(size); err != nil {
		return err
	}
	h.size = size
	h.dirty, h.writer = true, p.id
	return nil
}

// Flush commits what the handle has changed, if anything, for the caller
// of the flush (close(2)), decided anew: edit-resource on a dataset still
// initializing. A commit is tried once: if it fails, the error goes to
// this close (ENOSPC if the limit was reached meanwhile).
func (h *DatasetHandle) Flush(ctx context.Context, c Caller) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.dirty {
		return nil
	}
	h.dirty = false
	p, _, err := h.tree.authorizeDatasetEdit(c, "commit", h.res, h.path)
	if err != nil {
		return err
	}
	return h.commit(ctx, p.id)
}

// Fsync commits like Flush.
func (h *DatasetHandle) Fsync(ctx context.Context, c Caller) error { return h.Flush(ctx, c) }

// commit stores the spool as the file's content, as p.
func (h *DatasetHandle) commit(ctx context.Context, p policy.ID) error {
	cctx, cancel := context.WithTimeout(ctx, commitTimeout)
	defer cancel()
	if err := h.tree.datasets.DatasetCommit(cctx, p, h.res.ID, h.path, h.spool, h.size); err != nil {
		return err
	}
	h.base = h.size
	// Once the file is unlinked, the entry is all that describes it: it
	// must be the one committed, not the one opened. (The kernel does not
	// say which handle an fstat is for; go-fuse lends the inode's first.)
	if e, err := h.tree.datasets.DatasetStat(h.res.ID, h.path); err == nil {
		h.entry = e
	}
	return nil
}

// lastEntry is the entry as this handle last opened or committed it.
func (h *DatasetHandle) lastEntry() DatasetEntry {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.entry
}

// Release commits what is still uncommitted, as the principal who wrote
// it (the daemon decides again), and closes the spool and the content.
func (h *DatasetHandle) Release() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	var err error
	if h.dirty {
		h.dirty = false
		err = h.commit(context.Background(), h.writer)
	}
	if h.spool != nil {
		h.spool.Close()
		h.spool = nil
	}
	if h.content != nil {
		h.content.Close()
		h.content = nil
	}
	return err
}
