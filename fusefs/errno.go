package fusefs

import (
	"context"
	"errors"
	"log"
	"syscall"

	"github.com/sphere-sandbox/sphere/fusefs/vfs"
)

// errnos is the one mapping from the tree's errors to what a caller's
// syscall returns.
var errnos = []struct {
	err   error
	errno syscall.Errno
}{
	{vfs.ErrDenied, syscall.EACCES},
	{vfs.ErrReadOnly, syscall.EROFS},
	{vfs.ErrNotFound, syscall.ENOENT},
	{vfs.ErrExists, syscall.EEXIST},
	{vfs.ErrInvalidName, syscall.EINVAL},
	{vfs.ErrTooLarge, syscall.EFBIG},
	{vfs.ErrNotSupported, syscall.ENOTSUP},
	{vfs.ErrNotPermitted, syscall.EPERM},
	{vfs.ErrCrossDevice, syscall.EXDEV},
	{vfs.ErrNotDir, syscall.ENOTDIR},
	// The caller interrupted the request (a signal): the kernel expects EINTR.
	{context.Canceled, syscall.EINTR},
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
			return e.errno
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		log.Printf("sphere mount %s: %s: store did not answer in time: %v", tree, op, err)
	} else {
		log.Printf("sphere mount %s: %s: %v", tree, op, err)
	}
	return syscall.EIO
}
