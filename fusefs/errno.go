package fusefs

import (
	"context"
	"errors"
	"log"
	"syscall"

	"github.com/sphere-sandbox/sphere/fusefs/vfs"
)

// errnos is the one mapping from the tree's errors to what a caller's
// syscall returns. The errors marked logged are worth a line in the log
// (something is wrong outside the caller's doing), like anything unexpected.
var errnos = []struct {
	err    error
	errno  syscall.Errno
	logged bool
}{
	{vfs.ErrDenied, syscall.EACCES, false},
	{vfs.ErrReadOnly, syscall.EROFS, false},
	{vfs.ErrNotFound, syscall.ENOENT, false},
	{vfs.ErrExists, syscall.EEXIST, false},
	{vfs.ErrInvalidName, syscall.EINVAL, false},
	{vfs.ErrTooLarge, syscall.EFBIG, false},
	{vfs.ErrNotSupported, syscall.ENOTSUP, false},
	{vfs.ErrNotPermitted, syscall.EPERM, false},
	{vfs.ErrCrossDevice, syscall.EXDEV, false},
	{vfs.ErrNotDir, syscall.ENOTDIR, false},
	{vfs.ErrIsDir, syscall.EISDIR, false},
	{vfs.ErrNotEmpty, syscall.ENOTEMPTY, false},
	{vfs.ErrNoSpace, syscall.ENOSPC, false},
	// MinIO or the blob store down or slow: EIO, and the log says why.
	{vfs.ErrUnavailable, syscall.EIO, true},
	// The caller interrupted the request (a signal): the kernel expects EINTR.
	{context.Canceled, syscall.EINTR, false},
}

// toErrno turns an error of the tree into an errno. A store that did not
// answer in time, and anything unexpected, is EIO with a log line saying
// why; the tree's errors never carry a secret's value, so the line is safe.
func toErrno(tree *vfs.Tree, op string, err error) syscall.Errno {
	if err == nil {
		return 0
	}
	for _, e := range errnos {
		if errors.Is(err, e.err) {
			if e.logged {
				logf(tree, op, err)
			}
			return e.errno
		}
	}
	logf(tree, op, err)
	return syscall.EIO
}

// logf logs an error of op on tree.
func logf(tree *vfs.Tree, op string, err error) {
	if errors.Is(err, context.DeadlineExceeded) {
		log.Printf("sphere mount %s: %s: store did not answer in time: %v", tree, op, err)
	} else {
		log.Printf("sphere mount %s: %s: %v", tree, op, err)
	}
}
