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
		sb.WriteString(" " + e.Bucket)
	}
	if e.Key != "" {
		sb.WriteString("/" + e.Key)
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
	reason, kind := classify(ctx, err, atOpen)
	e := &Error{Op: op, Bucket: b.name, Key: key, Kind: kind, Reason: reason}
	// A caller that gave up (or a readahead no longer wanted) is no news.
	var te *timeoutError
	abandoned := ctx.Err() != nil && !errors.As(context.Cause(ctx), &te)
	if kind == ErrUnavailable && !abandoned {
		b.log.Warn("s3 operation failed", "op", op, "endpoint", b.endpoint, "bucket", b.name, "key", key, "reason", reason)
	}
	return e
}

// credentialHints says in plain words what Open's credential errors mean.
var credentialHints = map[string]string{
	"InvalidAccessKeyId":    "the server does not know this key id; ",
	"SignatureDoesNotMatch": "the secret is not this key id's; ",
	"AccessDenied":          "this key may not list the bucket; ",
}

func classify(ctx context.Context, err error, atOpen bool) (reason string, kind error) {
	// A context this package timed out explains itself better than the
	// "context deadline exceeded" or "connection reset" it causes.
	var te *timeoutError
	if errors.As(context.Cause(ctx), &te) {
		return te.Error(), ErrUnavailable
	}
	if ctx.Err() != nil {
		return "canceled: " + context.Cause(ctx).Error(), ErrUnavailable
	}
	var er minio.ErrorResponse
	if errors.As(err, &er) && er.Code != "" {
		reason = er.Code
		if er.Message != "" {
			reason += ": " + er.Message
		}
		switch er.Code {
		case "NoSuchKey", "NotFound":
			return reason, ErrNotFound
		case "NoSuchBucket":
			if atOpen {
				return reason, ErrNoSuchBucket
			}
			return reason, ErrNotFound
		case "AccessDenied", "SignatureDoesNotMatch", "InvalidAccessKeyId", "AllAccessDisabled":
			if atOpen {
				return credentialHints[er.Code] + reason, ErrBadCredentials
			}
			return reason, ErrDenied
		case minio.InvalidBucketName, minio.XMinioInvalidObjectName, "KeyTooLongError", "InvalidObjectName":
			return reason, ErrInvalid
		}
		if er.StatusCode >= 500 {
			return fmt.Sprintf("server error %d: %s", er.StatusCode, reason), ErrUnavailable
		}
		return fmt.Sprintf("unexpected answer %d: %s", er.StatusCode, reason), ErrUnavailable
	}
	var ne net.Error
	var ue *url.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused: is the server running? (" + err.Error() + ")", ErrUnavailable
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "connection lost: " + err.Error(), ErrUnavailable
	case errors.As(err, &ne) && ne.Timeout():
		return "timed out: " + err.Error(), ErrUnavailable
	case errors.As(err, &ne), errors.As(err, &ue):
		return "network error: " + err.Error(), ErrUnavailable
	}
	return "unexpected error: " + err.Error(), ErrUnavailable
}

// errorf builds an *Error that did not come from S3.
func (b *Bucket) errorf(op, key string, kind error, format string, args ...any) error {
	return &Error{Op: op, Bucket: b.name, Key: key, Kind: kind, Reason: fmt.Sprintf(format, args...)}
}
