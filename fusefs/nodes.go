package fusefs

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/sphere-sandbox/sphere/fusefs/vfs"
)

// Inode numbers. The root and the kind directories have fixed ones; a
// resource's is its ID, which the state machine hands out from
// policy.FirstAssigned up, well above these.
const rootIno = 1

var kindIno = map[string]uint64{vfs.KindDataset: 2, vfs.KindS3: 3, vfs.KindSecret: 4, vfs.KindModel: 5,
	vfs.KindImage: 6, vfs.KindNode: 7, vfs.KindAlias: 8, vfs.KindDataprocTemplate: 9}

func ino(r vfs.Ref) uint64 {
	switch {
	case r.Ino != 0: // below a gate: the tree numbers those
		return r.Ino
	case r.ID != 0:
		return uint64(r.ID)
	case r.Kind == "":
		return rootIno
	default:
		return kindIno[r.Kind]
	}
}

func fileType(r vfs.Ref) uint32 {
	if r.IsDir() {
		return fuse.S_IFDIR
	}
	return fuse.S_IFREG
}

// stableAttr is r's identity for go-fuse, which keeps one inode per
// identity. Below a gate, the generation is the resource's ID, so that two
// resources' entries never share an inode even if their numbers met.
func stableAttr(r vfs.Ref) fs.StableAttr {
	a := fs.StableAttr{Mode: fileType(r), Ino: ino(r)}
	if r.Sub != "" {
		a.Gen = uint64(r.ID)
	}
	return a
}

// nobody is the caller of a request that names none, which go-fuse never
// sends: the kernel's "no id", which no principal is registered with.
const nobody = math.MaxUint32

func callerOf(ctx context.Context) vfs.Caller {
	if c, ok := fuse.FromContext(ctx); ok {
		return vfs.Caller{UID: c.Uid, GID: c.Gid, PID: c.Pid}
	}
	return vfs.Caller{UID: nobody, GID: nobody}
}

func fillAttr(out *fuse.Attr, r vfs.Ref, a vfs.Attr) {
	out.Ino = ino(r)
	out.Mode = fileType(r) | a.Perm
	out.Size = uint64(a.Size)
	out.Nlink = 1
	switch {
	case a.Dir:
		out.Nlink = 2
	case a.Unlinked:
		out.Nlink = 0
	}
	out.Owner = fuse.Owner{Uid: a.UID, Gid: a.GID}
	out.SetTimes(&a.Mtime, &a.Mtime, &a.Mtime)
}

// fillEntry answers a LOOKUP (or CREATE, MKDIR, a READDIRPLUS entry) with r
// and a, and how long the kernel may keep both: as long as the tree says
// (0 unless they are the same for every caller, see vfs).
func fillEntry(out *fuse.EntryOut, r vfs.Ref, a vfs.Attr) {
	fillAttr(&out.Attr, r, a)
	out.SetEntryTimeout(max(a.Timeout, a.EntryTimeout))
	out.SetAttrTimeout(a.Timeout)
}

// node is what every node of the mount is: the tree and the Ref it stands
// for. Its methods are the operations every kind of node answers alike.
type node struct {
	fs.Inode
	mnt *mount
	r   vfs.Ref
	// moved is the node's Ref since a rename moved it (an object renamed
	// within its bucket); nil if it never moved.
	moved atomic.Pointer[vfs.Ref]

	filesMu sync.Mutex
	files   []*fileHandle // the handles open on the node (files only)
}

// mount is what every node of one mount shares.
type mount struct {
	tree *vfs.Tree
	// passthrough: offer the kernel local files to read directly.
	passthrough bool
}

var (
	_ = (fs.NodeGetattrer)((*node)(nil))
	_ = (fs.NodeSetattrer)((*node)(nil))
	_ = (fs.NodeAccesser)((*node)(nil))
	_ = (fs.NodeStatfser)((*node)(nil))
	_ = (fs.NodeGetxattrer)((*node)(nil))
	_ = (fs.NodeSetxattrer)((*node)(nil))
	_ = (fs.NodeRemovexattrer)((*node)(nil))
	_ = (fs.NodeListxattrer)((*node)(nil))
)

// ref is the Ref the node stands for now.
func (n *node) ref() vfs.Ref {
	if r := n.moved.Load(); r != nil {
		return *r
	}
	return n.r
}

// moveTo makes the node stand for r, where a rename put it. It keeps its
// inode number: that is the kernel's name for it.
func (n *node) moveTo(r vfs.Ref) {
	r.Ino = n.r.Ino
	n.moved.Store(&r)
}

func (n *node) tree() *vfs.Tree { return n.mnt.tree }

// track records fh as open on n, until fh is released.
func (n *node) track(fh *fileHandle) {
	n.filesMu.Lock()
	defer n.filesMu.Unlock()
	n.trackLocked(fh)
}

func (n *node) trackLocked(fh *fileHandle) {
	n.files = append(n.files, fh)
	fh.node = n
}

func (n *node) untrack(fh *fileHandle) {
	n.filesMu.Lock()
	defer n.filesMu.Unlock()
	for i, f := range n.files {
		if f == fh {
			n.files = append(n.files[:i], n.files[i+1:]...)
			break
		}
	}
}

// anyOpen is a handle open on n, if any.
func (n *node) anyOpen() vfs.OpenFile {
	n.filesMu.Lock()
	defer n.filesMu.Unlock()
	if len(n.files) == 0 {
		return nil
	}
	return n.files[0].h
}

// tracker is a node that keeps its open handles.
type tracker interface{ track(*fileHandle) }

func (n *node) errno(op string, err error) syscall.Errno { return toErrno(n.tree(), op, err) }

// handleOf is the open file f names, if any: the kernel passes one with
// fstat and ftruncate (and go-fuse one open on the node with any stat).
func handleOf(f fs.FileHandle) vfs.OpenFile {
	if h, ok := f.(*fileHandle); ok {
		return h.h
	}
	return nil
}

func (n *node) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	r := n.ref()
	a, err := n.tree().Getattr(ctx, callerOf(ctx), r, handleOf(f))
	if err != nil {
		return n.errno("getattr", err)
	}
	fillAttr(&out.Attr, r, a)
	out.SetTimeout(a.Timeout)
	return 0
}

func (n *node) Setattr(ctx context.Context, f fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	var s vfs.SetAttr
	if size, ok := in.GetSize(); ok {
		s.SetSize, s.Size = true, int64(min(size, math.MaxInt64))
	}
	_, s.Mode = in.GetMode()
	_, uidSet := in.GetUID()
	_, gidSet := in.GetGID()
	s.Owner = uidSet || gidSet
	s.Times = in.Valid&(fuse.FATTR_ATIME|fuse.FATTR_MTIME|fuse.FATTR_CTIME) != 0
	h := handleOf(f)
	if h == nil && !s.SetSize {
		// The kernel names the handle only for ftruncate; a file being
		// written may exist only there (an object before its commit), and
		// touch sets its times by path.
		h = n.anyOpen()
	}
	r := n.ref()
	a, err := n.tree().Setattr(ctx, callerOf(ctx), r, h, s)
	if err != nil {
		return n.errno("setattr", err)
	}
	fillAttr(&out.Attr, r, a)
	out.SetTimeout(a.Timeout)
	return 0
}

// Access answers access(2), and chdir, which the kernel checks with an
// ACCESS request on a mount without default_permissions. It must never
// answer ENOSYS: the kernel would take that as "allow everything" for good.
func (n *node) Access(ctx context.Context, mask uint32) syscall.Errno {
	return n.errno("access", n.tree().Access(ctx, callerOf(ctx), n.ref(), mask&(vfs.MayRead|vfs.MayWrite|vfs.MayExec)))
}

// Statfs gives df something true to show: names up to vfs.MaxNameLen
// (vfs.MaxEntryNameLen in datasets and buckets); no blocks, since nothing
// here is stored on a local disk.
func (n *node) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	out.Bsize = 4096
	out.Frsize = 4096
	out.NameLen = vfs.MaxNameLen
	if r := n.ref(); r.Name != "" && r.Kind != vfs.KindSecret {
		out.NameLen = vfs.MaxEntryNameLen
	}
	return 0
}

func (n *node) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	return 0, n.errno("getxattr", n.tree().Xattr(callerOf(ctx), n.ref()))
}

func (n *node) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	return n.errno("setxattr", n.tree().Xattr(callerOf(ctx), n.ref()))
}

func (n *node) Removexattr(ctx context.Context, attr string) syscall.Errno {
	return n.errno("removexattr", n.tree().Xattr(callerOf(ctx), n.ref()))
}

func (n *node) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	return 0, n.errno("listxattr", n.tree().Xattr(callerOf(ctx), n.ref()))
}

// directory is what the directories share: every directory operation goes
// to the tree with the directory's Ref, and the tree answers for its kind.
type directory struct {
	node
}

// rootDir is the mount's root: datasets/, s3/, secrets/, images/, ...
type rootDir struct{ directory }

// kindDir is datasets/, s3/, secrets/, images/, ...: one per kind.
type kindDir struct{ directory }

// datasetDir is datasets/NAME/ or models/NAME/ and every directory below it.
type datasetDir struct{ directory }

// bucketDir is s3/NAME/ and every directory (prefix) below it.
type bucketDir struct{ directory }

var (
	_ = (fs.NodeLookuper)((*rootDir)(nil))
	_ = (fs.NodeOpendirHandler)((*rootDir)(nil))
	_ = (fs.NodeCreater)((*rootDir)(nil))
	_ = (fs.NodeMkdirer)((*rootDir)(nil))
	_ = (fs.NodeUnlinker)((*rootDir)(nil))
	_ = (fs.NodeRmdirer)((*rootDir)(nil))
	_ = (fs.NodeRenamer)((*rootDir)(nil))
	_ = (fs.NodeLinker)((*rootDir)(nil))
	_ = (fs.NodeSymlinker)((*rootDir)(nil))
	_ = (fs.NodeMknoder)((*rootDir)(nil))
	_ = (fs.NodeFsyncer)((*rootDir)(nil))
	_ = (fs.NodeGetattrer)((*rootDir)(nil))
	_ = (fs.NodeSetattrer)((*rootDir)(nil))
	_ = (fs.NodeAccesser)((*rootDir)(nil))

	_ = (fs.NodeLookuper)((*kindDir)(nil))
	_ = (fs.NodeOpendirHandler)((*kindDir)(nil))
	_ = (fs.NodeCreater)((*kindDir)(nil))
	_ = (fs.NodeMkdirer)((*kindDir)(nil))
	_ = (fs.NodeUnlinker)((*kindDir)(nil))
	_ = (fs.NodeRmdirer)((*kindDir)(nil))
	_ = (fs.NodeRenamer)((*kindDir)(nil))
	_ = (fs.NodeLinker)((*kindDir)(nil))
	_ = (fs.NodeSymlinker)((*kindDir)(nil))
	_ = (fs.NodeMknoder)((*kindDir)(nil))
	_ = (fs.NodeFsyncer)((*kindDir)(nil))
	_ = (fs.NodeGetattrer)((*kindDir)(nil))
	_ = (fs.NodeSetattrer)((*kindDir)(nil))
	_ = (fs.NodeAccesser)((*kindDir)(nil))

	_ = (fs.NodeLookuper)((*datasetDir)(nil))
	_ = (fs.NodeOpendirHandler)((*datasetDir)(nil))
	_ = (fs.NodeCreater)((*datasetDir)(nil))
	_ = (fs.NodeMkdirer)((*datasetDir)(nil))
	_ = (fs.NodeUnlinker)((*datasetDir)(nil))
	_ = (fs.NodeRmdirer)((*datasetDir)(nil))
	_ = (fs.NodeRenamer)((*datasetDir)(nil))
	_ = (fs.NodeLinker)((*datasetDir)(nil))
	_ = (fs.NodeSymlinker)((*datasetDir)(nil))
	_ = (fs.NodeMknoder)((*datasetDir)(nil))
	_ = (fs.NodeFsyncer)((*datasetDir)(nil))
	_ = (fs.NodeGetattrer)((*datasetDir)(nil))
	_ = (fs.NodeSetattrer)((*datasetDir)(nil))
	_ = (fs.NodeAccesser)((*datasetDir)(nil))

	_ = (fs.NodeLookuper)((*bucketDir)(nil))
	_ = (fs.NodeOpendirHandler)((*bucketDir)(nil))
	_ = (fs.NodeCreater)((*bucketDir)(nil))
	_ = (fs.NodeMkdirer)((*bucketDir)(nil))
	_ = (fs.NodeUnlinker)((*bucketDir)(nil))
	_ = (fs.NodeRmdirer)((*bucketDir)(nil))
	_ = (fs.NodeRenamer)((*bucketDir)(nil))
	_ = (fs.NodeLinker)((*bucketDir)(nil))
	_ = (fs.NodeSymlinker)((*bucketDir)(nil))
	_ = (fs.NodeMknoder)((*bucketDir)(nil))
	_ = (fs.NodeFsyncer)((*bucketDir)(nil))
	_ = (fs.NodeGetattrer)((*bucketDir)(nil))
	_ = (fs.NodeSetattrer)((*bucketDir)(nil))
	_ = (fs.NodeAccesser)((*bucketDir)(nil))
)

// newChild makes the inode for r, of the type its kind needs. go-fuse keeps
// the inode already known under the same identity, if any.
func (d *directory) newChild(ctx context.Context, r vfs.Ref) *fs.Inode {
	var ops fs.InodeEmbedder
	switch {
	case r.Name == "":
		ops = &kindDir{directory{node{mnt: d.mnt, r: r}}}
	case r.Dataset() && r.IsDir():
		ops = &datasetDir{directory{node{mnt: d.mnt, r: r}}}
	case r.Dataset():
		ops = &datasetFile{node: node{mnt: d.mnt, r: r}}
	case r.Kind == vfs.KindS3 && r.IsDir():
		ops = &bucketDir{directory{node{mnt: d.mnt, r: r}}}
	case r.Kind == vfs.KindS3:
		ops = &bucketFile{node: node{mnt: d.mnt, r: r}}
	default: // a secret or a descriptor
		ops = &resourceFile{node: node{mnt: d.mnt, r: r}}
	}
	return d.NewInode(ctx, ops, stableAttr(r))
}

func (d *directory) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	r, a, err := d.tree().Lookup(ctx, callerOf(ctx), d.ref(), name)
	if err != nil {
		return nil, d.errno("lookup", err)
	}
	fillEntry(out, r, a)
	return d.newChild(ctx, r), 0
}

// OpendirHandle lists the directory when it is opened, so that a caller who
// may not list it fails at opendir (ls: cannot open directory), and serves
// that listing to the getdents that follow, rewinddir included.
func (d *directory) OpendirHandle(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	es, err := d.tree().Readdir(ctx, callerOf(ctx), d.ref())
	if err != nil {
		return nil, 0, d.errno("opendir", err)
	}
	return &listing{dir: d, entries: es}, 0, 0
}

// listing is an open directory: the entries the tree listed at opendir.
type listing struct {
	dir     *directory
	entries []vfs.DirEntry
	next    int // the index of the next entry; an entry's offset is its index + 1
}

var (
	_ = (fs.FileReaddirenter)((*listing)(nil))
	_ = (fs.FileSeekdirer)((*listing)(nil))
	_ = (fs.FileLookuper)((*listing)(nil))
)

func (l *listing) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	if l.next >= len(l.entries) {
		return nil, 0
	}
	e := l.entries[l.next]
	l.next++
	return &fuse.DirEntry{Name: e.Name, Mode: fileType(e.Ref), Ino: ino(e.Ref), Off: uint64(l.next)}, 0
}

func (l *listing) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	l.next = int(min(off, uint64(len(l.entries))))
	return 0
}

// Lookup answers READDIRPLUS for the entry Readdirent gave last. The kernel
// may keep what it is told here like the answer of a LOOKUP, for any
// caller: so it is told only what the tree shows everyone alike (below a
// sealed dataset's or a bucket's gate, where `ls -l` then needs no request
// per entry). For every other entry it is told nothing (no node): it asks
// LOOKUP, decided for the caller, when the name is used.
func (l *listing) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if l.next == 0 {
		return nil, syscall.ENOENT
	}
	e := l.entries[l.next-1]
	if e.Name != name || e.Attr.Timeout == 0 {
		return nil, syscall.ENOENT
	}
	fillEntry(out, e.Ref, e.Attr)
	return l.dir.newChild(ctx, e.Ref), 0
}

func (d *directory) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	c := callerOf(ctx)
	m := openMode(flags)
	if m.Write {
		c.PID = processOf(c.PID)
	}
	r, a, h, err := d.tree().Create(ctx, c, d.ref(), name, m)
	if err != nil {
		return nil, nil, 0, d.errno("create", err)
	}
	fillEntry(out, r, a)
	child := d.newChild(ctx, r)
	fh := &fileHandle{tree: d.tree(), h: h, write: m.Write}
	if t, ok := child.Operations().(tracker); ok {
		t.track(fh)
	}
	return child, fh, openFlags(h), 0
}

func (d *directory) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	r, a, err := d.tree().Mkdir(ctx, callerOf(ctx), d.ref(), name)
	if err != nil {
		return nil, d.errno("mkdir", err)
	}
	fillEntry(out, r, a)
	return d.newChild(ctx, r), 0
}

func (d *directory) Unlink(ctx context.Context, name string) syscall.Errno {
	return d.errno("unlink", d.tree().Unlink(ctx, callerOf(ctx), d.ref(), name))
}

func (d *directory) Rmdir(ctx context.Context, name string) syscall.Errno {
	return d.errno("rmdir", d.tree().Rmdir(ctx, callerOf(ctx), d.ref(), name))
}

// refHolder is a node of this mount, as go-fuse hands back a rename's new
// parent.
type refHolder interface{ ref() vfs.Ref }

// mover is a node a rename can move (see node.moveTo).
type mover interface{ moveTo(vfs.Ref) }

// Rename is done in place only for an object within its bucket; everything
// else the tree answers EXDEV, and mv copies and deletes instead, each step
// under the caller's rights. The node renamed is told where it is now, since
// go-fuse moves it under its new name.
func (d *directory) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	var newDir vfs.Ref
	if p, ok := newParent.(refHolder); ok {
		newDir = p.ref()
	}
	r, err := d.tree().Rename(ctx, callerOf(ctx), d.ref(), name, newDir, newName, flags)
	if err != nil {
		return d.errno("rename", err)
	}
	if ch := d.GetChild(name); ch != nil {
		if m, ok := ch.Operations().(mover); ok {
			m.moveTo(r)
		}
	}
	return 0
}

func (d *directory) Link(ctx context.Context, target fs.InodeEmbedder, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, d.errno("link", d.tree().MakeNode(callerOf(ctx), d.ref()))
}

func (d *directory) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, d.errno("symlink", d.tree().MakeNode(callerOf(ctx), d.ref()))
}

func (d *directory) Mknod(ctx context.Context, name string, mode uint32, dev uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, d.errno("mknod", d.tree().MakeNode(callerOf(ctx), d.ref()))
}

// Fsync of a directory has nothing to do: every change of a directory has
// reached the store when its call returned.
func (d *directory) Fsync(ctx context.Context, f fs.FileHandle, flags uint32) syscall.Errno {
	return 0
}

func openMode(flags uint32) vfs.OpenMode {
	m := vfs.OpenMode{Truncate: flags&syscall.O_TRUNC != 0, Exclusive: flags&syscall.O_EXCL != 0}
	switch flags & syscall.O_ACCMODE {
	case syscall.O_RDONLY:
		m.Read = true
	case syscall.O_WRONLY:
		m.Write = true
	default:
		m.Read, m.Write = true, true
	}
	return m
}
