// Package s3mount presents an S3 bucket as a filesystem tree: objects are
// files, "/"-separated key prefixes are directories. It is the part of an
// S3 connector's mount that talks to S3, with no FUSE in it: a FUSE adapter
// maps its calls and its errors (see the Err* kinds) onto the kernel's.
//
// Reads are ranged GETs with readahead (Reader), writes stream as
// multipart uploads (Writer), listings are cached for a second, and so is
// the head of a file Stat fetched, for the Open that follows. Every S3
// request is bounded by Config.Timeout, so a server that is down or frozen
// turns into ErrUnavailable, never a hang.
package s3mount

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// maxKeyLen is S3's limit on a key, in bytes.
const maxKeyLen = 1024

// maxRetries is how often minio-go tries a request that failed on the
// network or with a 5xx. Its default (10, with up to a second between
// tries) would spend the whole Timeout retrying a server that is down;
// three tries ride out a blip and still fail fast.
const maxRetries = 3

// Bucket is an opened bucket. It is safe for concurrent use; one Bucket
// per connector lets all mounts share its connections and its listing
// cache.
type Bucket struct {
	name     string
	endpoint string // as configured (one or several), for messages
	readOnly bool
	timeout  time.Duration
	log      *slog.Logger
	s3       *minio.Core
	tr       *http.Transport
	cache    *listCache

	// ctx ends at Close; readahead and uploads run under it, since they
	// outlive the call that started them.
	ctx    context.Context
	cancel context.CancelFunc
}

// Entry describes a file or directory. Directories have no size, time or
// ETag: S3 has no such thing for a prefix.
type Entry struct {
	Name    string // base name; "" for the root
	Dir     bool
	Size    int64
	ModTime time.Time
	ETag    string
}

// Open validates cfg, then checks that the bucket exists and that the key
// may list it, so a wrong connector is reported when it is created, with
// ErrNoSuchBucket, ErrBadCredentials or ErrUnavailable, rather than as
// EIO on the first ls.
func Open(ctx context.Context, cfg Config) (*Bucket, error) {
	urls, err := ParseEndpoints(cfg.Endpoint)
	if err != nil {
		return nil, err
	}
	u := urls[0]
	if err := ValidateBucketName(cfg.Bucket); err != nil {
		return nil, err
	}
	if cfg.KeyID == "" || cfg.Secret == "" {
		return nil, &Error{Op: "open", Bucket: cfg.Bucket, Kind: ErrInvalid, Reason: "both the key id and the secret are required"}
	}
	if cfg.Timeout < 0 {
		return nil, &Error{Op: "open", Bucket: cfg.Bucket, Kind: ErrInvalid, Reason: "negative timeout " + cfg.Timeout.String()}
	}
	timeout := cmp.Or(cfg.Timeout, DefaultTimeout)
	log := cmp.Or(cfg.Logger, slog.Default())
	tr := newTransport(timeout)
	var rt http.RoundTripper = tr
	if len(urls) > 1 {
		f := &failover{base: tr, log: log, bucket: cfg.Bucket}
		for _, u := range urls {
			f.hosts = append(f.hosts, u.Host)
		}
		rt = f
	}
	core, err := minio.NewCore(u.Host, &minio.Options{
		Creds:      credentials.NewStaticV4(cfg.KeyID, cfg.Secret, ""),
		Secure:     u.Scheme == "https",
		Transport:  rt,
		MaxRetries: max(maxRetries, len(urls)),
	})
	if err != nil {
		return nil, &Error{Op: "open", Bucket: cfg.Bucket, Kind: ErrInvalid, Reason: err.Error()}
	}
	b := &Bucket{
		name:     cfg.Bucket,
		endpoint: endpointList(urls),
		readOnly: cfg.ReadOnly,
		timeout:  timeout,
		log:      log,
		s3:       core,
		tr:       tr,
		cache:    newListCache(),
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	if err := b.check(ctx); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// endpointList is the endpoints as messages show them.
func endpointList(urls []*url.URL) string {
	var sb strings.Builder
	for i, u := range urls {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(u.String())
	}
	return sb.String()
}

// newTransport bounds each phase of a request by timeout. The context
// deadlines set per operation bound the rest; both are needed, since a
// frozen server accepts connections (the kernel does) but never answers.
func newTransport(timeout time.Duration) *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   timeout,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
		ResponseHeaderTimeout: timeout,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		// Readahead and uploads of several open files run in parallel.
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 64,
		// Objects are served as stored; gzip would be decoded otherwise.
		DisableCompression: true,
		// Fewer, larger syscalls on streams of a GiB/s.
		ReadBufferSize:  256 << 10,
		WriteBufferSize: 256 << 10,
	}
}

// check answers "does the bucket exist, and may this key list it?".
func (b *Bucket) check(ctx context.Context) error {
	ctx, cancel := b.opContext(ctx)
	defer cancel()
	ok, err := b.s3.BucketExists(ctx, b.name)
	if err == nil && !ok {
		return b.errorf("open", "", ErrNoSuchBucket, "bucket %q does not exist at %s", b.name, b.endpoint)
	}
	// A HEAD answer has no body, so a refusal does not say why; a listing
	// does (unknown key id, wrong secret, or no permission).
	noOwner := false
	for o := range b.s3.ListObjectsIter(ctx, b.name, minio.ListObjectsOptions{MaxKeys: 1, FetchOwner: &noOwner}) {
		if o.Err != nil {
			return b.fail(ctx, "open", "", o.Err, true)
		}
		break
	}
	if err != nil || ctx.Err() != nil {
		return b.fail(ctx, "open", "", cmp.Or(err, ctx.Err()), true)
	}
	return nil
}

// Close stops readahead and uploads still running on this bucket (their
// Readers and Writers then fail) and releases idle connections.
func (b *Bucket) Close() {
	b.cancel()
	b.tr.CloseIdleConnections()
}

// Name is the bucket's name.
func (b *Bucket) Name() string { return b.name }

// ReadOnly reports whether writes are refused with ErrReadOnly.
func (b *Bucket) ReadOnly() bool { return b.readOnly }

// Stat describes the file or directory at path ("" is the root). A key is
// a file; a prefix "path/" with objects under it, or a "path/" marker
// object, is a directory. Where a key and a prefix share a name, the file
// wins, here and in List. Answers come from a cached listing of the parent
// when there is one, or from the head a recent Stat fetched.
//
// A file is looked up with a GET of its head rather than a HEAD: the
// answer costs the same, and the kernel's LOOKUP is almost always followed
// by an OPEN, which then needs no request of its own (see Open). Reading
// a small file is one request, as with a fetch by minio-go.
func (b *Bucket) Stat(ctx context.Context, path string) (Entry, error) {
	if err := b.checkPath("stat", path); err != nil {
		return Entry{}, err
	}
	if path == "" {
		return Entry{Dir: true}, nil
	}
	dir, name := splitPath(path)
	if l := b.cache.get(dir); l != nil {
		if e, ok := l.lookup(name); ok {
			return e, nil
		}
		return Entry{}, b.errorf("stat", path, ErrNotFound, "")
	}
	if h := b.cache.head(path); h != nil {
		return h.entry, nil
	}
	ctx, cancel := b.opContext(ctx)
	defer cancel()
	return b.statRemote(ctx, "stat", path)
}

// statRemote asks S3 about path: first as a key, then as a prefix.
func (b *Bucket) statRemote(ctx context.Context, op, path string) (Entry, error) {
	gen := b.cache.generation()
	start := time.Now()
	e, head, err := b.readHead(ctx, op, path)
	if err == nil {
		b.cache.putHead(path, gen, start, e, head)
		return e, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return Entry{}, err
	}
	_, name := splitPath(path)
	isDir, err := b.anyUnder(ctx, op, path+"/", false)
	if err != nil {
		return Entry{}, err
	}
	if !isDir {
		return Entry{}, b.errorf(op, path, ErrNotFound, "no object and no objects under %s/", path)
	}
	return Entry{Name: name, Dir: true}, nil
}

// anyUnder reports whether some object's key starts with prefix; with
// skipMarker, the "prefix" marker object itself does not count.
func (b *Bucket) anyUnder(ctx context.Context, op, prefix string, skipMarker bool) (bool, error) {
	noOwner := false
	found := false
	for o := range b.s3.ListObjectsIter(ctx, b.name, minio.ListObjectsOptions{Prefix: prefix, Recursive: true, MaxKeys: 2, FetchOwner: &noOwner}) {
		if o.Err != nil {
			return false, b.fail(ctx, op, prefix, o.Err, false)
		}
		if skipMarker && o.Key == prefix {
			continue
		}
		found = true
		break
	}
	// The listing stops silently when its context ends.
	if !found && ctx.Err() != nil {
		return false, b.fail(ctx, op, prefix, ctx.Err(), false)
	}
	return found, nil
}

// List returns one level of the directory dir ("" is the root), sorted by
// name. It pages through the whole listing; entries carry sizes and times,
// so `ls -l` needs no request per entry. Listings are cached for about a
// second (this Bucket's own writes invalidate them); the caller may modify
// the returned slice.
func (b *Bucket) List(ctx context.Context, dir string) ([]Entry, error) {
	if err := b.checkPath("list", dir); err != nil {
		return nil, err
	}
	if l := b.cache.get(dir); l != nil {
		return slices.Clone(l.entries), nil
	}
	gen := b.cache.generation()
	start := time.Now()
	prefix := dir
	if dir != "" {
		prefix += "/"
	}
	// A big directory takes many pages: bound the time without progress,
	// not the total.
	w := b.watch(ctx)
	defer w.stop()
	noOwner := false
	byName := make(map[string]Entry)
	marker := false
	for o := range b.s3.ListObjectsIter(w.ctx, b.name, minio.ListObjectsOptions{Prefix: prefix, FetchOwner: &noOwner}) {
		if o.Err != nil {
			return nil, b.fail(w.ctx, "list", prefix, o.Err, false)
		}
		w.kick()
		if o.Key == prefix {
			marker = true
			continue
		}
		name, isDir := strings.CutSuffix(o.Key[len(prefix):], "/")
		if !validName(name) {
			continue // "a//b", "a/./b": keys with no place in a file tree
		}
		if isDir {
			if _, ok := byName[name]; !ok {
				byName[name] = Entry{Name: name, Dir: true}
			}
			continue
		}
		// Second precision, like a HEAD's Last-Modified: a file's time
		// must not change with where Stat got it from.
		byName[name] = Entry{Name: name, Size: o.Size, ModTime: o.LastModified.Truncate(time.Second), ETag: o.ETag}
	}
	if err := w.ctx.Err(); err != nil {
		return nil, b.fail(w.ctx, "list", prefix, err, false)
	}
	if len(byName) == 0 && !marker && dir != "" {
		// Nothing under the prefix: either a file or nothing at all.
		ctx, cancel := b.opContext(ctx)
		defer cancel()
		e, err := b.statRemote(ctx, "list", dir)
		switch {
		case err != nil:
			return nil, err
		case !e.Dir:
			return nil, b.errorf("list", dir, ErrNotDir, "it is a file")
		}
	}
	entries := make([]Entry, 0, len(byName))
	for _, e := range byName {
		entries = append(entries, e)
	}
	slices.SortFunc(entries, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
	b.cache.put(dir, gen, start, entries)
	return slices.Clone(entries), nil
}

// Remove deletes a file, or an empty directory's marker object.
func (b *Bucket) Remove(ctx context.Context, path string) error {
	if err := b.checkWrite("remove", path); err != nil {
		return err
	}
	e, err := b.Stat(ctx, path)
	if err != nil {
		return err
	}
	ctx, cancel := b.opContext(ctx)
	defer cancel()
	key := path
	if e.Dir {
		key += "/"
		nonEmpty, err := b.anyUnder(ctx, "remove", key, true)
		if err != nil {
			return err
		}
		if nonEmpty {
			return b.errorf("remove", path, ErrNotEmpty, "the directory has objects under it")
		}
	}
	defer b.cache.invalidate(path)
	if err := b.s3.RemoveObject(ctx, b.name, key, minio.RemoveObjectOptions{}); err != nil {
		return b.fail(ctx, "remove", key, err, false)
	}
	return nil
}

// Mkdir creates a directory as a "path/" marker object, which is how S3
// tools show an empty folder. The parent is not checked: prefixes exist
// implicitly, and the kernel has looked the parent up already.
func (b *Bucket) Mkdir(ctx context.Context, path string) error {
	if err := b.checkWrite("mkdir", path); err != nil {
		return err
	}
	switch _, err := b.Stat(ctx, path); {
	case err == nil:
		return b.errorf("mkdir", path, ErrExist, "a file or directory of that name exists")
	case !errors.Is(err, ErrNotFound):
		return err
	}
	ctx, cancel := b.opContext(ctx)
	defer cancel()
	defer b.cache.invalidate(path)
	if _, err := b.s3.PutObject(ctx, b.name, path+"/", strings.NewReader(""), 0, "", "", minio.PutObjectOptions{}); err != nil {
		return b.fail(ctx, "mkdir", path+"/", err, false)
	}
	return nil
}

// copyRate is the slowest server-side copy rate Rename allows for on top
// of Config.Timeout: a copy is one request whose answer comes only when
// all the bytes have been copied.
const copyRate = 50 << 20 // bytes per second

// Rename moves a file with a server-side copy and a delete (S3 has no
// rename), replacing a file at to. Directories cannot be renamed: that
// would be a copy of every object under them, and not atomic.
func (b *Bucket) Rename(ctx context.Context, from, to string) error {
	if err := b.checkWrite("rename", from); err != nil {
		return err
	}
	if err := b.checkWrite("rename", to); err != nil {
		return err
	}
	src, err := b.Stat(ctx, from)
	if err != nil {
		return err
	}
	if src.Dir {
		return b.errorf("rename", from, ErrNotSupported, "directories cannot be renamed on S3")
	}
	if from == to {
		return nil
	}
	switch dst, err := b.Stat(ctx, to); {
	case err == nil && dst.Dir:
		return b.errorf("rename", to, ErrIsDir, "the target")
	case err != nil && !errors.Is(err, ErrNotFound):
		return err
	}
	limit := b.timeout + time.Duration(src.Size/copyRate)*time.Second
	ctx, cancel := context.WithTimeoutCause(ctx, limit, &timeoutError{endpoint: b.endpoint, what: "copy " + from, limit: limit})
	defer cancel()
	defer b.cache.invalidate(from)
	defer b.cache.invalidate(to)
	// MatchETag: never move a different version than the one checked.
	_, err = b.s3.ComposeObject(ctx,
		minio.CopyDestOptions{Bucket: b.name, Object: to},
		minio.CopySrcOptions{Bucket: b.name, Object: from, MatchETag: src.ETag})
	if err != nil {
		return b.fail(ctx, "rename", from+" -> "+to, err, false)
	}
	if err := b.s3.RemoveObject(ctx, b.name, from, minio.RemoveObjectOptions{}); err != nil {
		return b.fail(ctx, "rename", from, err, false)
	}
	return nil
}

// checkPath refuses paths that cannot name an object: the root is "", and
// other paths are "/"-separated names with no empty, "." or ".." parts.
func (b *Bucket) checkPath(op, path string) error {
	bad := func(rule string) error { return b.errorf(op, path, ErrInvalid, "path %s", rule) }
	switch {
	case path == "":
		return nil
	case len(path) >= maxKeyLen: // room for a directory's trailing "/"
		return bad("is longer than S3's 1023-byte limit")
	case !utf8.ValidString(path):
		return bad("is not valid UTF-8")
	case strings.HasPrefix(path, "/") || strings.HasSuffix(path, "/"):
		return bad("must not begin or end with /")
	}
	for name := range strings.SplitSeq(path, "/") {
		if !validName(name) {
			return bad("has an empty, \".\", \"..\" or NUL-containing part")
		}
	}
	return nil
}

func (b *Bucket) checkWrite(op, path string) error {
	if b.readOnly {
		return b.errorf(op, path, ErrReadOnly, "the connector is read-only")
	}
	if err := b.checkPath(op, path); err != nil {
		return err
	}
	if path == "" {
		return b.errorf(op, path, ErrInvalid, "the bucket's root cannot be changed")
	}
	return nil
}

func validName(n string) bool {
	return n != "" && n != "." && n != ".." && !strings.ContainsRune(n, 0) && utf8.ValidString(n)
}

// splitPath splits "a/b/c" into "a/b" and "c", and "c" into "" and "c".
func splitPath(p string) (dir, name string) {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return "", p
	}
	return p[:i], p[i+1:]
}
