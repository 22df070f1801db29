package fusefs

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/sphere-sandbox/sphere/fusefs/vfs"
)

// resourceFile is a file that is a resource: secrets/NAME, or a
// descriptor such as images/NAME.json.
type resourceFile struct {
	node
}

// datasetFile is a file of a dataset or a model.
type datasetFile struct {
	node

	// passthrough says whether the handles open on the file (node.files)
	// read through the kernel's passthrough. The kernel refuses (EIO) to
	// open a file in passthrough mode while it is open in the cached mode,
	// and the other way round, so every handle open at once is of the mode
	// the first one took. Guarded by node.filesMu.
	passthrough bool
}

// bucketFile is an object of a bucket.
type bucketFile struct {
	node
}

var (
	_ = (fs.NodeOpener)((*resourceFile)(nil))
	_ = (fs.NodeGetattrer)((*resourceFile)(nil))
	_ = (fs.NodeSetattrer)((*resourceFile)(nil))
	_ = (fs.NodeAccesser)((*resourceFile)(nil))

	_ = (fs.NodeOpener)((*datasetFile)(nil))
	_ = (fs.NodeGetattrer)((*datasetFile)(nil))
	_ = (fs.NodeSetattrer)((*datasetFile)(nil))
	_ = (fs.NodeAccesser)((*datasetFile)(nil))

	_ = (fs.NodeOpener)((*bucketFile)(nil))
	_ = (fs.NodeGetattrer)((*bucketFile)(nil))
	_ = (fs.NodeSetattrer)((*bucketFile)(nil))
	_ = (fs.NodeAccesser)((*bucketFile)(nil))
)

// open opens the file n stands for, for the caller of ctx. A flush of a
// file opened for writing names the calling process: an object's commit
// depends on it.
func (n *node) open(ctx context.Context, flags uint32) (*fileHandle, syscall.Errno) {
	c := callerOf(ctx)
	m := openMode(flags)
	if m.Write {
		c.PID = processOf(c.PID)
	}
	h, err := n.tree().Open(ctx, c, n.ref(), m)
	if err != nil {
		return nil, n.errno("open", err)
	}
	return &fileHandle{tree: n.tree(), h: h, write: m.Write}, 0
}

// openFlags tells the kernel what its page cache may hold of h.
func openFlags(h vfs.OpenFile) uint32 {
	switch h.Caching() {
	case vfs.CacheNone:
		return fuse.FOPEN_DIRECT_IO
	case vfs.CacheKeep:
		return fuse.FOPEN_KEEP_CACHE
	default:
		return 0
	}
}

// Open opens a secret with FOPEN_DIRECT_IO: every read comes to the tree,
// which asks policy again, and the value never enters the page cache. An
// open with O_TRUNC replaces the value (the mount asks for atomic O_TRUNC).
// A descriptor's pages are kept while it is open (openFlags).
func (f *resourceFile) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	h, errno := f.open(ctx, flags)
	if errno != 0 {
		return nil, 0, errno
	}
	f.track(h)
	return h, openFlags(h.h), 0
}

// Open opens a dataset's file, decided for the caller at every open. A
// sealed dataset's file keeps its pages in the kernel's cache across opens
// (FOPEN_KEEP_CACHE), or, when the content is a local file, the kernel
// reads that file itself (FUSE passthrough: see fileHandle.PassthroughFd);
// either way its reads do not come back to the tree, so a file open before
// a role was revoked may go on reading what it could read at open.
func (f *datasetFile) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	h, errno := f.open(ctx, flags)
	if errno != 0 {
		return nil, 0, errno
	}
	var local *os.File
	if lf, ok := h.h.(localFiler); ok && f.mnt.passthrough {
		local, _ = lf.LocalFile()
	}
	f.filesMu.Lock()
	if len(f.files) == 0 {
		f.passthrough = local != nil
	}
	if f.passthrough {
		h.backing = local
	}
	f.trackLocked(h)
	f.filesMu.Unlock()
	return h, openFlags(h.h), 0
}

// localFiler is an open file whose content may be a local file.
type localFiler interface {
	LocalFile() (*os.File, bool)
}

// Open opens an object: for reading, streamed from the bucket; for writing
// (with O_TRUNC), streamed to it.
func (f *bucketFile) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	h, errno := f.open(ctx, flags)
	if errno != 0 {
		return nil, 0, errno
	}
	f.track(h)
	return h, openFlags(h.h), 0
}

// fileHandle is an open file of any kind: the tree's handle decides.
type fileHandle struct {
	tree  *vfs.Tree
	h     vfs.OpenFile
	write bool // opened for writing
	// backing is the local file the kernel reads directly, if any
	// (passthrough); go-fuse registers it with the kernel at open.
	backing *os.File
	node    *node // the node it is open on, which keeps it until Release
}

var (
	_ = (fs.FileReader)((*fileHandle)(nil))
	_ = (fs.FileWriter)((*fileHandle)(nil))
	_ = (fs.FileFlusher)((*fileHandle)(nil))
	_ = (fs.FileFsyncer)((*fileHandle)(nil))
	_ = (fs.FileReleaser)((*fileHandle)(nil))
	_ = (fs.FilePassthroughFder)((*fileHandle)(nil))
)

// Read reads into the request's own buffer, which go-fuse reuses: no copy
// and no allocation per read. A secret's value is zeroed once sent.
func (fh *fileHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	n, err := fh.h.Read(ctx, callerOf(ctx), dest, off)
	if err != nil {
		return nil, toErrno(fh.tree, "read", err)
	}
	if fh.h.Caching() == vfs.CacheNone {
		return zeroingResult(dest[:n]), 0
	}
	return dataResult(dest[:n]), 0
}

// dataResult is data read on its way to the kernel, written from where it
// was read with one writev: it has Slices, which go-fuse prefers to trying
// splice(2) first (which it does for every other result, with syscalls
// wasted on data in memory, and fails for a reply over the pipe's size).
type dataResult []byte

func (r dataResult) Bytes(buf []byte) ([]byte, fuse.Status) { return r, fuse.OK }
func (r dataResult) Slices() ([][]byte, fuse.Status)        { return [][]byte{r}, fuse.OK }
func (r dataResult) Size() int                              { return len(r) }
func (r dataResult) Done()                                  {}

func (fh *fileHandle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	n, err := fh.h.Write(ctx, callerOf(ctx), data, off)
	if err != nil {
		return 0, toErrno(fh.tree, "write", err)
	}
	return uint32(n), 0
}

// Flush commits what was written: close(2) reports a commit refused or
// failed.
func (fh *fileHandle) Flush(ctx context.Context) syscall.Errno {
	c := callerOf(ctx)
	if fh.write {
		c.PID = processOf(c.PID)
	}
	return toErrno(fh.tree, "flush", fh.h.Flush(ctx, c))
}

func (fh *fileHandle) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	return toErrno(fh.tree, "fsync", fh.h.Fsync(ctx, callerOf(ctx)))
}

// Release is the last close, which the kernel does not wait for: what it
// still commits can only fail into the log.
func (fh *fileHandle) Release(ctx context.Context) syscall.Errno {
	if err := fh.h.Release(); err != nil {
		logf(fh.tree, "release", err)
	}
	if fh.node != nil {
		fh.node.untrack(fh)
	}
	return 0
}

// PassthroughFd offers the kernel the local file to read directly, once
// per node (go-fuse shares the registration among the handles open on it).
// go-fuse falls back to Read, for good, if the kernel refuses (no
// CAP_SYS_ADMIN, a kernel before 6.9 or without FUSE passthrough).
func (fh *fileHandle) PassthroughFd() (int, bool) {
	if fh.backing == nil {
		return 0, false
	}
	return int(fh.backing.Fd()), true
}

// zeroingResult is a secret's value on its way to the kernel. go-fuse
// reuses its read buffers; Done, called once the reply is sent, zeroes the
// value so that it does not linger in them.
type zeroingResult []byte

func (r zeroingResult) Bytes(buf []byte) ([]byte, fuse.Status) { return r, fuse.OK }
func (r zeroingResult) Slices() ([][]byte, fuse.Status)        { return [][]byte{r}, fuse.OK }
func (r zeroingResult) Size() int                              { return len(r) }
func (r zeroingResult) Done()                                  { clear(r) }

// processOf is the process (thread group) of the thread pid: the kernel
// names the thread that made a request, and a program's threads open,
// write and close the same file. 0 (no caller) stays 0; a thread that is
// gone already stands for itself.
func processOf(pid uint32) uint32 {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return pid
	}
	_, rest, ok := bytes.Cut(b, []byte("\nTgid:"))
	if !ok {
		return pid
	}
	line, _, _ := bytes.Cut(rest, []byte("\n"))
	tgid, err := strconv.ParseUint(string(bytes.TrimSpace(line)), 10, 32)
	if err != nil {
		return pid
	}
	return uint32(tgid)
}
