package datastore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sphere-sandbox/sphere/s3mount"
)

// Blobs is where chunks live: content-addressed, write-once. Keys passed in
// are always BlobKeys: 64 lowercase hex digits, maybe a generation after.
type Blobs interface {
	// Put stores data under key. Storing a key that is already there
	// succeeds without rewriting it.
	Put(ctx context.Context, key string, data []byte) error
	// Get returns the blob stored under key, or an error wrapping
	// ErrMissing when there is none.
	Get(ctx context.Context, key string) ([]byte, error)
}

// Sweeper is a blob store whose blobs can be listed and deleted, so that
// the unreferenced ones can be swept. The built-in stores are.
type Sweeper interface {
	// List calls fn for every blob, in no particular order.
	List(ctx context.Context, fn func(BlobInfo) error) error
	// Delete removes a blob; one that is not there is no error.
	Delete(ctx context.Context, key string) error
}

// BlobInfo is a stored blob as a listing shows it.
type BlobInfo struct {
	Key      string
	Size     int64
	Modified time.Time
}

// blobReader is implemented by the built-in blob stores: reading a blob of
// known length straight into a pooled buffer saves an allocation per chunk
// (and for S3, the copies of growing a buffer of unknown size). It fails
// with ErrMissing, or errSize if the blob is not len(buf) bytes long.
type blobReader interface {
	getInto(ctx context.Context, key string, buf []byte) error
}

var (
	_ Sweeper = (*localBlobs)(nil)
	_ Sweeper = (*s3Blobs)(nil)
)

// localBlobs keeps each blob in DIR/ab/abcdef…, the first two hex digits
// fanning blobs out over 256 directories.
type localBlobs struct {
	dir string
}

// NewLocalBlobs opens (creating it if needed) a blob store in a local folder.
// Writes are atomic and durable: a blob is written to a temporary file,
// fsynced, renamed into place and its directory fsynced, so a crash leaves
// either the whole blob or none of it.
func NewLocalBlobs(dir string) (Blobs, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("datastore: blob dir %q: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("datastore: blob dir: %w", err)
	}
	return &localBlobs{dir: abs}, nil
}

func (b *localBlobs) path(key string) string {
	return filepath.Join(b.dir, key[:2], key)
}

func (b *localBlobs) Put(ctx context.Context, key string, data []byte) error {
	if !validKey(key) {
		return fmt.Errorf("datastore: put: bad blob key %q", key)
	}
	p := b.path(key)
	// Content addressing makes an existing blob of the right length the
	// same blob; a damaged one is caught by verification on read.
	if fi, err := os.Stat(p); err == nil && fi.Size() == int64(len(data)) {
		return nil
	}
	fan := filepath.Dir(p)
	if err := os.Mkdir(fan, 0o755); err == nil {
		if err := syncDir(b.dir); err != nil {
			return fmt.Errorf("datastore: put %s: %w", key, err)
		}
	} else if !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("datastore: put %s: %w", key, err)
	}
	f, err := os.CreateTemp(fan, ".tmp-"+key[:8]+"-*")
	if err != nil {
		return fmt.Errorf("datastore: put %s: %w", key, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), p)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("datastore: put %s: %w", key, err)
	}
	if err := syncDir(fan); err != nil {
		return fmt.Errorf("datastore: put %s: %w", key, err)
	}
	return nil
}

func (b *localBlobs) Get(ctx context.Context, key string) ([]byte, error) {
	if !validKey(key) {
		return nil, fmt.Errorf("datastore: get: bad blob key %q", key)
	}
	data, err := os.ReadFile(b.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", b.path(key), ErrMissing)
	}
	return data, err
}

func (b *localBlobs) getInto(ctx context.Context, key string, buf []byte) error {
	f, err := os.Open(b.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: %w", b.path(key), ErrMissing)
	}
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() != int64(len(buf)) {
		return fmt.Errorf("%s is %d bytes, want %d: %w", f.Name(), fi.Size(), len(buf), errSize)
	}
	if _, err := f.ReadAt(buf, 0); err != nil {
		if err == io.EOF { // shrank since the Stat
			return fmt.Errorf("%s: %w", f.Name(), errSize)
		}
		return err
	}
	return nil
}

// List walks the fan-out folders; temporary files of unfinished Puts are
// not blobs and are left out.
func (b *localBlobs) List(ctx context.Context, fn func(BlobInfo) error) error {
	fans, err := os.ReadDir(b.dir)
	if err != nil {
		return fmt.Errorf("datastore: list %s: %w", b.dir, err)
	}
	for _, fan := range fans {
		if !fan.IsDir() || len(fan.Name()) != 2 {
			continue
		}
		entries, err := os.ReadDir(filepath.Join(b.dir, fan.Name()))
		if err != nil {
			return fmt.Errorf("datastore: list %s: %w", b.dir, err)
		}
		for _, e := range entries {
			if err := ctx.Err(); err != nil {
				return err
			}
			if !e.Type().IsRegular() || !validKey(e.Name()) || e.Name()[:2] != fan.Name() {
				continue
			}
			fi, err := e.Info()
			if errors.Is(err, fs.ErrNotExist) {
				continue // deleted meanwhile
			} else if err != nil {
				return fmt.Errorf("datastore: list %s: %w", b.dir, err)
			}
			if err := fn(BlobInfo{Key: e.Name(), Size: fi.Size(), Modified: fi.ModTime()}); err != nil {
				return err
			}
		}
	}
	return nil
}

func (b *localBlobs) Delete(ctx context.Context, key string) error {
	if !validKey(key) {
		return fmt.Errorf("datastore: delete: bad blob key %q", key)
	}
	if err := os.Remove(b.path(key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("datastore: delete %s: %w", key, err)
	}
	return nil
}

// s3Spec is a parsed "s3://KEYID:SECRET@HOST:PORT/BUCKET[/PREFIX]".
type s3Spec struct {
	endpoints                     []string // HOST:PORT of one MinIO, or of several nodes of a distributed one
	bucket, keyID, secret, prefix string
}

// ParseBlobStore opens the blob store a spec names:
//
//	DIR, /abs/dir                           a local folder (created if missing)
//	s3://KEYID:SECRET@HOST:PORT/BUCKET[/PREFIX]  a bucket over plain http
//	                                        (created if missing); percent-encode
//	                                        any ':', '@' or '/' in KEYID or SECRET;
//	                                        HOST:PORT,HOST:PORT,... names several
//	                                        nodes of one distributed MinIO, used
//	                                        in turn when one stops answering
//
// Errors wrap ErrInvalidSpec for specs that cannot be parsed, and never
// contain the secret.
func ParseBlobStore(ctx context.Context, spec string) (Blobs, error) {
	if spec == "" {
		return nil, fmt.Errorf("%w: empty; want a directory or s3://KEYID:SECRET@HOST:PORT/BUCKET[/PREFIX]", ErrInvalidSpec)
	}
	if scheme, _, ok := strings.Cut(spec, "://"); ok {
		if scheme != "s3" {
			return nil, fmt.Errorf("%w: scheme %q: want a directory or s3://KEYID:SECRET@HOST:PORT/BUCKET[/PREFIX]", ErrInvalidSpec, scheme)
		}
		sp, err := parseS3Spec(spec)
		if err != nil {
			return nil, err
		}
		return newFailoverBlobs(ctx, sp)
	}
	return NewLocalBlobs(spec)
}

// parseS3Spec splits an s3:// spec. Its error texts are built only from the
// parts after the '@', so a secret cannot leak into them, even one that
// was not percent-encoded.
func parseS3Spec(spec string) (s3Spec, error) {
	const form = "s3://KEYID:SECRET@HOST:PORT/BUCKET[/PREFIX]"
	bad := func(format string, args ...any) (s3Spec, error) {
		return s3Spec{}, fmt.Errorf("%w: %s (want %s)", ErrInvalidSpec, fmt.Sprintf(format, args...), form)
	}
	rest := strings.TrimPrefix(spec, "s3://")
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return bad("no credentials")
	}
	user, where := rest[:at], rest[at+1:]
	rawKey, rawSecret, ok := strings.Cut(user, ":")
	if !ok || rawKey == "" || rawSecret == "" {
		return bad("credentials must be KEYID:SECRET, both non-empty")
	}
	keyID, err := url.PathUnescape(rawKey)
	if err != nil {
		return bad("bad percent-encoding in the key id")
	}
	secret, err := url.PathUnescape(rawSecret)
	if err != nil {
		return bad("bad percent-encoding in the secret")
	}
	hostports, path, _ := strings.Cut(where, "/")
	if strings.ContainsAny(where, "?#") {
		return bad("%q: no query or fragment allowed", where)
	}
	endpoints := strings.Split(hostports, ",")
	for _, hostport := range endpoints {
		host, port, err := net.SplitHostPort(hostport)
		if err != nil || host == "" {
			return bad("%q is not HOST:PORT", hostport)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return bad("port %q is not a number in 1..65535", port)
		}
	}
	bucket, prefix, _ := strings.Cut(path, "/")
	if err := s3mount.ValidateBucketName(bucket); err != nil {
		return bad("%v", err)
	}
	prefix, err = cleanPrefix(prefix)
	if err != nil {
		return bad("%v", err)
	}
	return s3Spec{endpoints: endpoints, bucket: bucket, keyID: keyID, secret: secret, prefix: prefix}, nil
}

// cleanPrefix normalizes an object key prefix to "" or "a/b/".
func cleanPrefix(p string) (string, error) {
	p = strings.Trim(p, "/")
	if p == "" {
		return "", nil
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "", fmt.Errorf("prefix %q has an empty, '.' or '..' segment", p)
		}
	}
	return p + "/", nil
}
