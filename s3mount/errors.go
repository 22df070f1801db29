package s3mount

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
)

// The kinds of failure. Every error returned by this package is an *Error
// whose Kind is one of these, so callers (the FUSE adapter) select an errno
// with errors.Is and never need to look at S3 error codes.
var (
	// ErrNotFound: no object or directory at that path (ENOENT).
	ErrNotFound = errors.New("not found")
	// ErrDenied: the key may not do this to this bucket (EACCES).
	ErrDenied = errors.New("access denied")
	// ErrReadOnly: a write through a read-only connector (EROFS).
	ErrReadOnly = errors.New("read-only connector")
	// ErrUnavailable: S3 is unreachable, stalled, failing or answered
	// something unexpected (EIO). A log line says which.
	ErrUnavailable = errors.New("S3 unavailable")
	// ErrNotEmpty: removing a directory that still has objects (ENOTEMPTY).
	ErrNotEmpty = errors.New("directory not empty")
	// ErrIsDir: a file operation on a directory (EISDIR).
	ErrIsDir = errors.New("is a directory")
	// ErrNotDir: a directory operation on a file (ENOTDIR).
	ErrNotDir = errors.New("not a directory")
	// ErrExist: creating a directory where a file or directory is (EEXIST).
	ErrExist = errors.New("already exists")
	// ErrNotSupported: something S3 cannot do as a filesystem, such as
	// writing anywhere but at the end of a new file, or renaming a
	// directory (ENOTSUP).
	ErrNotSupported = errors.New("not supported")
	// ErrBadCredentials: Open found the key id unknown, the secret wrong,
	// or the key not allowed to list the bucket.
	ErrBadCredentials = errors.New("bad credentials")
	// ErrNoSuchBucket: Open found no bucket of that name.
	ErrNoSuchBucket = errors.New("no such bucket")
	// ErrInvalid: a malformed argument: endpoint, bucket name, path or
	// configuration (EINVAL).
	ErrInvalid = errors.New("invalid argument")
)

// Error describes a failed operation: what was attempted on which object,
// the kind of failure and S3's or the network's own words for it. It never
// contains the secret key (S3 error texts and URLs do not carry it).
type Error struct {
	Op     string // "open", "stat", "list", "read", "write", "remove", ...
	Bucket string
	Key    string // the object key or directory prefix; "" for the bucket
	Kind   error  // one of the Err* values above
	Reason string // why, in words; may be empty
}

func (e *Error) Error() string {
	if e.Op == "" { // a validation error: the reason says it all
		return e.Reason
	}
	var sb strings.Builder
	sb.WriteString("s3 " + e.Op)
	if e.Bucket != "" {
		sb.WriteString(" " + e.Bucket + "/" + e.Key)
	}
	sb.WriteString(": " + e.Kind.Error())
	if e.Reason != "" {
		sb.WriteString(": " + e.Reason)
	}
	return sb.String()
}

// Unwrap makes errors.Is(err, ErrNotFound) and friends work.
func (e *Error) Unwrap() error { return e.Kind }

// timeoutError is the cause set on contexts this package cancels because S3
// did not answer (or stopped sending) within Config.Timeout.
type timeoutError struct {
	endpoint string
	what     string // "answer", "make progress"
	limit    time.Duration
}

func (e *timeoutError) Error() string {
	return fmt.Sprintf("%s did not %s within %v", e.endpoint, e.what, e.limit)
}

// fail turns err, returned by an S3 call made with ctx on key, into an
// *Error. This is the one place S3 and network errors are classified.
// Errors that are ErrUnavailable are logged, since EIO alone tells an
// operator nothing. atOpen selects the kinds Open reports for bucket and
// credential problems.
func (b *Bucket) fail(ctx context.Context, op, key string, err error, atOpen bool) error {
	var done *Error
	if errors.As(err, &done) {
		return err
	}
	kind, reason := classify(ctx, err, atOpen)
	e := &Error{Op: op, Bucket: b.name, Key: key, Kind: kind, Reason: reason}
	if kind == ErrUnavailable && !errors.Is(ctx.Err(), context.Canceled) {
		b.log.Warn("s3 operation failed", "op", op, "endpoint", b.endpoint, "bucket", b.name, "key", key, "reason", reason)
	}
	return e
}

func classify(ctx context.Context, err error, atOpen bool) (kind error, reason string) {
	// A context this package timed out explains itself better than the
	// "context deadline exceeded" or "connection reset" it causes.
	var te *timeoutError
	if errors.As(context.Cause(ctx), &te) {
		return ErrUnavailable, te.Error()
	}
	if ctx.Err() != nil {
		return ErrUnavailable, "canceled: " + context.Cause(ctx).Error()
	}
	var er minio.ErrorResponse
	if errors.As(err, &er) && er.Code != "" {
		reason = er.Code
		if er.Message != "" {
			reason += ": " + er.Message
		}
		switch er.Code {
		case "NoSuchKey", "NotFound":
			return ErrNotFound, reason
		case "NoSuchBucket":
			if atOpen {
				return ErrNoSuchBucket, reason
			}
			return ErrNotFound, reason
		case "AccessDenied", "SignatureDoesNotMatch", "InvalidAccessKeyId", "AllAccessDisabled":
			if atOpen {
				return ErrBadCredentials, reason
			}
			return ErrDenied, reason
		case minio.InvalidBucketName, minio.XMinioInvalidObjectName, "KeyTooLongError", "InvalidObjectName":
			return ErrInvalid, reason
		}
		if er.StatusCode >= 500 {
			return ErrUnavailable, fmt.Sprintf("server error %d: %s", er.StatusCode, reason)
		}
		return ErrUnavailable, fmt.Sprintf("unexpected answer %d: %s", er.StatusCode, reason)
	}
	var ne net.Error
	var ue *url.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return ErrUnavailable, "connection refused: is the server running? (" + err.Error() + ")"
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return ErrUnavailable, "connection lost: " + err.Error()
	case errors.As(err, &ne) && ne.Timeout():
		return ErrUnavailable, "timed out: " + err.Error()
	case errors.As(err, &ne), errors.As(err, &ue):
		return ErrUnavailable, "network error: " + err.Error()
	}
	return ErrUnavailable, "unexpected error: " + err.Error()
}

// errorf builds an *Error that did not come from S3.
func (b *Bucket) errorf(op, key string, kind error, format string, args ...any) error {
	return &Error{Op: op, Bucket: b.name, Key: key, Kind: kind, Reason: fmt.Sprintf(format, args...)}
}
