package fusefs

import (
	"context"
	"math"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/sphere-sandbox/sphere/fusefs/vfs"
)

// Inode numbers. The root and the kind directories have fixed ones; a
// resource's is its ID, which the state machine hands out from
// policy.FirstAssigned up, well above these.
const rootIno = 1

var kindIno = map[string]uint64{vfs.KindDataset: 2, vfs.KindS3: 3, vfs.KindSecret: 4}

func ino(r vfs.Ref) uint64 {
	switch {
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

// nobody is the caller of a request that names none, which go-fuse never
// sends: the kernel's "no id", which no principal is registered with.
const nobody = math.MaxUint32

func callerOf(ctx context.Context) vfs.Caller {
	if c, ok := fuse.FromContext(ctx); ok {
		return vfs.Caller{UID: c.Uid, GID: c.Gid}
	}
	return vfs.Caller{UID: nobody, GID: nobody}
}

func fillAttr(out *fuse.Attr, r vfs.Ref, a vfs.Attr) {
	out.Ino = ino(r)
	out.Mode = fileType(r) | a.Perm
	out.Size = uint64(a.Size)
	out.Nlink = 1
	if a.Dir {
		out.Nlink = 2
	}
	out.Owner = fuse.Owner{Uid: a.UID, Gid: a.GID}
	out.SetTimes(&a.Mtime, &a.Mtime, &a.Mtime)
}

// node is what every node of the mount is: the tree and the Ref it stands
// for. Its methods are the operations every kind of node answers alike.
type node struct {
	fs.Inode
	tree *vfs.Tree
	ref  vfs.Ref
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

func (n *node) errno(op string, err error) syscall.Errno { return toErrno(n.tree, op, err) }

// handleOf is the open secret f names, if any: the kernel passes one with
// fstat, ftruncate and the truncation of an open with O_TRUNC.
func handleOf(f fs.FileHandle) *vfs.Handle {
	if h, ok := f.(*secretHandle); ok {
		return h.h
	}
	return nil
}

func (n *node) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	a, err := n.tree.Getattr(callerOf(ctx), n.ref, handleOf(f))
	if err != nil {
		return n.errno("getattr", err)
	}
	fillAttr(&out.Attr, n.ref, a)
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
	a, err := n.tree.Setattr(ctx, callerOf(ctx), n.ref, handleOf(f), s)
	if err != nil {
		return n.errno("setattr", err)
	}
	fillAttr(&out.Attr, n.ref, a)
	return 0
}

// Access answers access(2), and chdir, which the kernel checks with an
// ACCESS request on a mount without default_permissions. It must never
// answer ENOSYS: the kernel would take that as "allow everything" for good.
func (n *node) Access(ctx context.Context, mask uint32) syscall.Errno {
	return n.errno("access", n.tree.Access(callerOf(ctx), n.ref, mask&(vfs.MayRead|vfs.MayWrite|vfs.MayExec)))
}

// Statfs gives df something true to show: names up to vfs.MaxNameLen; no
// blocks, since nothing here is stored on a local disk.
func (n *node) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	out.Bsize = 4096
	out.Frsize = 4096
	out.NameLen = vfs.MaxNameLen
	return 0
}

func (n *node) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	return 0, n.errno("getxattr", n.tree.Xattr(callerOf(ctx), n.ref))
}

func (n *node) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	return n.errno("setxattr", n.tree.Xattr(callerOf(ctx), n.ref))
}

func (n *node) Removexattr(ctx context.Context, attr string) syscall.Errno {
	return n.errno("removexattr", n.tree.Xattr(callerOf(ctx), n.ref))
}

func (n *node) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	return 0, n.errno("listxattr", n.tree.Xattr(callerOf(ctx), n.ref))
}

// directory is what the directories share: every directory operation goes
// to the tree with the directory's Ref, and the tree answers for its kind.
type directory struct {
	node
}

// rootDir is the mount's root: datasets/, s3/ and secrets/.
type rootDir struct{ directory }

// kindDir is datasets/, s3/ or secrets/.
type kindDir struct{ directory }

// resourceDir is datasets/NAME/ or s3/NAME/. Its contents belong to the
// dataset and S3 layers; here it is empty.
type resourceDir struct{ directory }

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

	_ = (fs.NodeLookuper)((*resourceDir)(nil))
	_ = (fs.NodeOpendirHandler)((*resourceDir)(nil))
	_ = (fs.NodeCreater)((*resourceDir)(nil))
	_ = (fs.NodeMkdirer)((*resourceDir)(nil))
	_ = (fs.NodeUnlinker)((*resourceDir)(nil))
	_ = (fs.NodeRmdirer)((*resourceDir)(nil))
	_ = (fs.NodeRenamer)((*resourceDir)(nil))
	_ = (fs.NodeLinker)((*resourceDir)(nil))
	_ = (fs.NodeSymlinker)((*resourceDir)(nil))
	_ = (fs.NodeMknoder)((*resourceDir)(nil))
	_ = (fs.NodeFsyncer)((*resourceDir)(nil))
	_ = (fs.NodeGetattrer)((*resourceDir)(nil))
	_ = (fs.NodeSetattrer)((*resourceDir)(nil))
	_ = (fs.NodeAccesser)((*resourceDir)(nil))
)

// newChild makes the inode for r, of the type its kind needs. go-fuse keeps
// the inode already known under the same number, if any.
func (d *directory) newChild(ctx context.Context, r vfs.Ref) *fs.Inode {
	var ops fs.InodeEmbedder
	switch {
	case !r.IsDir():
		ops = &secretFile{node: node{tree: d.tree, ref: r}}
	case r.Name == "":
		ops = &kindDir{directory{node{tree: d.tree, ref: r}}}
	default:
		ops = &resourceDir{directory{node{tree: d.tree, ref: r}}}
	}
	return d.NewInode(ctx, ops, fs.StableAttr{Mode: fileType(r), Ino: ino(r)})
}

func (d *directory) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	r, a, err := d.tree.Lookup(callerOf(ctx), d.ref, name)
	if err != nil {
		return nil, d.errno("lookup", err)
	}
	fillAttr(&out.Attr, r, a)
	return d.newChild(ctx, r), 0
}

// OpendirHandle lists the directory when it is opened, so that a caller who
// may not list it fails at opendir (ls: cannot open directory), and serves
// that listing to the getdents that follow, rewinddir included.
func (d *directory) OpendirHandle(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	es, err := d.tree.Readdir(callerOf(ctx), d.ref)
	if err != nil {
		return nil, 0, d.errno("opendir", err)
	}
	list := make([]fuse.DirEntry, 0, len(es))
	for _, e := range es {
		list = append(list, fuse.DirEntry{Name: e.Name, Mode: fileType(e.Ref), Ino: ino(e.Ref)})
	}
	return fs.NewListDirStream(list), 0, 0
}

func (d *directory) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	r, a, h, err := d.tree.Create(ctx, callerOf(ctx), d.ref, name, openMode(flags))
	if err != nil {
		return nil, nil, 0, d.errno("create", err)
	}
	fillAttr(&out.Attr, r, a)
	return d.newChild(ctx, r), &secretHandle{tree: d.tree, h: h}, fuse.FOPEN_DIRECT_IO, 0
}

func (d *directory) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	r, a, err := d.tree.Mkdir(ctx, callerOf(ctx), d.ref, name)
	if err != nil {
		return nil, d.errno("mkdir", err)
	}
	fillAttr(&out.Attr, r, a)
	return d.newChild(ctx, r), 0
}

func (d *directory) Unlink(ctx context.Context, name string) syscall.Errno {
	return d.errno("unlink", d.tree.Unlink(ctx, callerOf(ctx), d.ref, name))
}

func (d *directory) Rmdir(ctx context.Context, name string) syscall.Errno {
	return d.errno("rmdir", d.tree.Rmdir(ctx, callerOf(ctx), d.ref, name))
}

// Rename is never done in place: the tree answers EXDEV, and mv copies and
// deletes instead, each step under the caller's rights.
func (d *directory) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	return d.errno("rename", d.tree.Rename(callerOf(ctx), d.ref, name))
}

func (d *directory) Link(ctx context.Context, target fs.InodeEmbedder, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, d.errno("link", d.tree.MakeNode(callerOf(ctx), d.ref))
}

func (d *directory) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, d.errno("symlink", d.tree.MakeNode(callerOf(ctx), d.ref))
}

func (d *directory) Mknod(ctx context.Context, name string, mode uint32, dev uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, d.errno("mknod", d.tree.MakeNode(callerOf(ctx), d.ref))
}

// Fsync of a directory has nothing to do: every change of a directory has
// reached the store when its call returned.
func (d *directory) Fsync(ctx context.Context, f fs.FileHandle, flags uint32) syscall.Errno {
	return 0
}

func openMode(flags uint32) vfs.OpenMode {
	m := vfs.OpenMode{Truncate: flags&syscall.O_TRUNC != 0}
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

// secretFile is secrets/NAME.
type secretFile struct {
	node
}

var (
	_ = (fs.NodeOpener)((*secretFile)(nil))
	_ = (fs.NodeGetattrer)((*secretFile)(nil))
	_ = (fs.NodeSetattrer)((*secretFile)(nil))
	_ = (fs.NodeAccesser)((*secretFile)(nil))
)

// Open opens the secret with FOPEN_DIRECT_IO: every read comes to the tree,
// which asks policy again, and the value never enters the page cache. The
// kernel strips O_TRUNC (go-fuse does not ask for atomic O_TRUNC) and sends
// a SETATTR of size 0 on the new handle instead.
func (f *secretFile) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	h, err := f.tree.Open(callerOf(ctx), f.ref, openMode(flags))
	if err != nil {
		return nil, 0, f.errno("open", err)
	}
	return &secretHandle{tree: f.tree, h: h}, fuse.FOPEN_DIRECT_IO, 0
}

// secretHandle is an open secret.
type secretHandle struct {
	tree *vfs.Tree
	h    *vfs.Handle
}

var (
	_ = (fs.FileReader)((*secretHandle)(nil))
	_ = (fs.FileWriter)((*secretHandle)(nil))
	_ = (fs.FileFlusher)((*secretHandle)(nil))
	_ = (fs.FileFsyncer)((*secretHandle)(nil))
	_ = (fs.FileReleaser)((*secretHandle)(nil))
)

func (s *secretHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	n, err := s.h.Read(ctx, callerOf(ctx), dest, off)
	if err != nil {
		return nil, toErrno(s.tree, "read", err)
	}
	return zeroingResult(dest[:n]), 0
}

func (s *secretHandle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	n, err := s.h.Write(ctx, callerOf(ctx), data, off)
	if err != nil {
		return 0, toErrno(s.tree, "write", err)
	}
	return uint32(n), 0
}

// Flush commits what was written: close(2) reports a commit policy refused.
func (s *secretHandle) Flush(ctx context.Context) syscall.Errno {
	return toErrno(s.tree, "flush", s.h.Flush(ctx, callerOf(ctx)))
}

func (s *secretHandle) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	return toErrno(s.tree, "fsync", s.h.Flush(ctx, callerOf(ctx)))
}

func (s *secretHandle) Release(ctx context.Context) syscall.Errno {
	s.h.Release()
	return 0
}

// zeroingResult is a secret's value on its way to the kernel. go-fuse
// reuses its read buffers; Done, called once the reply is sent, zeroes the
// value so that it does not linger in them.
type zeroingResult []byte

func (r zeroingResult) Bytes(buf []byte) ([]byte, fuse.Status) { return r, fuse.OK }
func (r zeroingResult) Size() int                              { return len(r) }
func (r zeroingResult) Done()                                  { clear(r) }
