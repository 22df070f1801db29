// Package datastore stores the contents of dataset files as content-addressed
// chunks in a blob store (a local folder or a MinIO bucket) and serves
// verified reads through a size-bounded cache on local disk.
//
// A file is a list of ChunkRefs plus its size; keeping that list (in Raft) is
// the caller's business. This package only turns bytes into chunks and
// chunks back into bytes, and never returns bytes that do not match the hash
// they were asked for.
package datastore

import (
	"container/list"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// The kinds of failure. Errors returned by this package wrap one of these, so
// callers pick an errno with errors.Is; all but ErrInvalidSpec and
// ErrCacheFull become EIO on a FUSE read.
var (
	// ErrMissing: a chunk is not in the blob store. Logged.
	ErrMissing = errors.New("chunk missing from blob store")
	// ErrCorrupt: a chunk's bytes do not match its hash or its length.
	// Logged; the bad bytes are neither returned nor cached.
	ErrCorrupt = errors.New("chunk corrupt")
	// ErrUnavailable: the blob store failed or timed out (network, disk,
	// credentials). Logged.
	ErrUnavailable = errors.New("blob store unavailable")
	// ErrInvalidChunks: a chunk list that cannot describe a file: a hash
	// that is not 64 lowercase hex digits, a size below 1, or sizes that do
	// not add up to the file size.
	ErrInvalidChunks = errors.New("invalid chunk list")
	// ErrInvalidSpec: ParseBlobStore cannot use the spec it was given.
	ErrInvalidSpec = errors.New("invalid blob store spec")
	// ErrCacheFull: LocalFile cannot make room for a file: it is larger than
	// the cache bound, or files pinned by open handles fill the rest.
	// Callers fall back to a Reader.
	ErrCacheFull = errors.New("cache full")
	// ErrClosed: use of a closed Store, Reader or Writer.
	ErrClosed = errors.New("closed")
)

// errSize is what the built-in blob stores report when a blob is not the
// length its ChunkRef says; the Store turns it into ErrCorrupt.
var errSize = errors.New("blob has the wrong size")

// ChunkRef is one content-addressed chunk of a file: its SHA-256 (hex),
// its length and the generation its blob was written in. Stored in Raft by
// others (JSON).
type ChunkRef struct {
	Hash string `json:"h"`
	Size int64  `json:"n"`
	// Gen is the sweep epoch the writer started in: blobs of an older one
	// may be swept, blobs of the current one never (see DESIGN.md).
	Gen uint64 `json:"g,omitempty"`
}

// Key is the name of the chunk's blob.
func (r ChunkRef) Key() string { return BlobKey(r.Hash, r.Gen) }

// BlobKey names the blob of a chunk written in generation gen: its hash,
// with "-GEN" after it from generation 1 on.
func BlobKey(hash string, gen uint64) string {
	if gen == 0 {
		return hash
	}
	return hash + "-" + strconv.FormatUint(gen, 10)
}

// ParseBlobKey splits a blob's name into the chunk's hash and generation;
// ok is false for a name that is not a blob's.
func ParseBlobKey(key string) (hash string, gen uint64, ok bool) {
	hash, suffix, hasGen := strings.Cut(key, "-")
	if !validHash(hash) {
		return "", 0, false
	}
	if !hasGen {
		return hash, 0, true
	}
	gen, err := strconv.ParseUint(suffix, 10, 64)
	if err != nil || gen == 0 || strconv.FormatUint(gen, 10) != suffix {
		return "", 0, false
	}
	return hash, gen, true
}

// validKey reports whether k names a blob. Keys become file names and
// object keys, so nothing else may pass.
func validKey(k string) bool {
	_, _, ok := ParseBlobKey(k)
	return ok
}

// Defaults for zero Options fields.
const (
	DefaultChunkSize  = 4 << 20
	DefaultPrefetch   = 8
	DefaultCacheBytes = 10 << 30
	DefaultTimeout    = time.Minute
)

// Chunk sizes New accepts.
const (
	MinChunkSize = 4 << 10
	MaxChunkSize = 256 << 20
)

// maxOpenFiles bounds the descriptors kept open on cached chunks. Opening a
// file costs more than reading a megabyte of it from the page cache, so the
// hot ones stay open; the rest are reopened on demand.
const maxOpenFiles = 256

// Options configures a Store.
type Options struct {
	// CacheDir holds the chunk cache and the files LocalFile materializes.
	// Required. One Store at a time may use it (New locks it).
	CacheDir string
	// CacheBytes bounds the space the cache takes on disk, counted in whole
	// 4 KiB blocks per file. Default DefaultCacheBytes.
	CacheBytes int64
	// ChunkSize is the size of the chunks writers cut; readers accept any
	// chunk sizes. Default DefaultChunkSize.
	ChunkSize int
	// Prefetch is how many chunks a sequential reader fetches ahead in
	// parallel, and how many workers LocalFile fills a file with. Default
	// DefaultPrefetch; negative turns prefetching off.
	Prefetch int
	// MaxBuffers bounds the chunk buffers in memory: at most MaxBuffers for
	// fetches (shared by all readers and LocalFile) and as many for uploads
	// (shared by all writers; a writer holds one while filling a chunk and
	// one per chunk being uploaded). Default 2×Prefetch, at least 4.
	MaxBuffers int
	// Timeout bounds each blob store request. Default DefaultTimeout.
	Timeout time.Duration
	// Logger receives a line for every chunk that is missing, corrupt or
	// could not be fetched. Default slog.Default().
	Logger *slog.Logger
}

// Store reads and writes file contents. It is safe for concurrent use.
type Store struct {
	blobs Blobs
	into  blobReader // blobs, when it can fill a caller's buffer; else nil
	opts  Options
	log   *slog.Logger
	dir   string   // absolute CacheDir
	lock  *os.File // holds the flock that keeps other Stores out of dir

	// ctx ends background fetches when the Store closes.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // background fetches

	// Semaphores whose slots are chunk buffers: holding a slot is the
	// right to hold one buffer, which is what bounds memory.
	fetchSlots  chan struct{}
	uploadSlots chan struct{}
	bufs        sync.Pool // *[]byte of cap ChunkSize
	// builder is held by the one local copy MaterializeLater builds at a
	// time.
	builder chan struct{}

	mu          sync.Mutex
	closed      bool
	entries     map[string]*entry // by path relative to dir
	lru         list.List         // of *entry, most recently used first
	fds         list.List         // of *entry with an open file, most recently used first
	used        int64             // entry costs plus reservations
	flights     map[string]*flight
	fileFlights map[string]*fileFlight
	evictions   int64
	recycled    int64 // names recycled files in tmp/

	hits, misses atomic.Int64
}

// CacheStats describes the cache. Hits and Misses count chunk lookups by
// readers (a read spanning two chunks is two lookups) and LocalFile calls.
type CacheStats struct {
	Used      int64 // bytes on disk, in 4 KiB blocks, including reservations for files being written
	Bound     int64
	Chunks    int // cached chunks
	Files     int // materialized files (LocalFile)
	Hits      int64
	Misses    int64
	Evictions int64
}

// New opens a Store over blobs, with its cache in opts.CacheDir. The cache
// of a previous Store over the same directory is kept: its index is rebuilt
// by scanning the directory.
func New(blobs Blobs, opts Options) (*Store, error) {
	if blobs == nil {
		return nil, errors.New("datastore: no blob store")
	}
	if opts.CacheDir == "" {
		return nil, errors.New("datastore: Options.CacheDir is required")
	}
	if opts.CacheBytes == 0 {
		opts.CacheBytes = DefaultCacheBytes
	}
	if opts.CacheBytes < 0 {
		return nil, fmt.Errorf("datastore: Options.CacheBytes %d is negative", opts.CacheBytes)
	}
	if opts.ChunkSize == 0 {
		opts.ChunkSize = DefaultChunkSize
	}
	if opts.ChunkSize < MinChunkSize || opts.ChunkSize > MaxChunkSize {
		return nil, fmt.Errorf("datastore: Options.ChunkSize %d is outside %d..%d", opts.ChunkSize, MinChunkSize, MaxChunkSize)
	}
	switch {
	case opts.Prefetch == 0:
		opts.Prefetch = DefaultPrefetch
	case opts.Prefetch < 0:
		opts.Prefetch = 0
	}
	if opts.MaxBuffers <= 0 {
		opts.MaxBuffers = max(2*opts.Prefetch, 4)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	dir, err := filepath.Abs(opts.CacheDir)
	if err != nil {
		return nil, fmt.Errorf("datastore: cache dir: %w", err)
	}
	opts.CacheDir = dir

	s := &Store{
		blobs:       blobs,
		opts:        opts,
		log:         opts.Logger,
		dir:         dir,
		fetchSlots:  make(chan struct{}, opts.MaxBuffers),
		uploadSlots: make(chan struct{}, opts.MaxBuffers),
		builder:     make(chan struct{}, 1),
		entries:     make(map[string]*entry),
		flights:     make(map[string]*flight),
		fileFlights: make(map[string]*fileFlight),
	}
	s.into, _ = blobs.(blobReader)
	s.bufs.New = func() any {
		b := make([]byte, opts.ChunkSize)
		return &b
	}
	if err := s.openCache(); err != nil {
		if s.lock != nil {
			s.lock.Close()
		}
		return nil, fmt.Errorf("datastore: cache %s: %w", dir, err)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// Close stops background fetches, flushes the cache to disk and marks it
// clean, so the next Store over the directory trusts it without rehashing.
// Readers and Writers of the Store fail with ErrClosed afterwards; files
// returned by LocalFile stay readable.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()

	s.mu.Lock()
	for el := s.fds.Front(); el != nil; el = el.Next() {
		el.Value.(*entry).f.Close()
	}
	s.fds.Init()
	s.mu.Unlock()

	err := s.markClean()
	if cerr := s.lock.Close(); err == nil {
		err = cerr
	}
	return err
}

// CacheStats reports the cache's size and counters.
func (s *Store) CacheStats() CacheStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := CacheStats{Used: s.used, Bound: s.opts.CacheBytes, Hits: s.hits.Load(), Misses: s.misses.Load(), Evictions: s.evictions}
	for _, e := range s.entries {
		if e.file {
			st.Files++
		} else {
			st.Chunks++
		}
	}
	return st
}

// validHash reports whether h is a SHA-256 in lowercase hex. Hashes become
// file names and object keys, so nothing else may pass.
func validHash(h string) bool {
	if len(h) != 64 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// offsets checks a chunk list against size and returns where each chunk
// starts, with size appended.
func offsets(chunks []ChunkRef, size int64) ([]int64, error) {
	offs := make([]int64, len(chunks)+1)
	var off int64
	for i, c := range chunks {
		if !validHash(c.Hash) {
			return nil, fmt.Errorf("%w: chunk %d: hash %q is not a lowercase hex SHA-256", ErrInvalidChunks, i, c.Hash)
		}
		if c.Size < 1 {
			return nil, fmt.Errorf("%w: chunk %d: size %d", ErrInvalidChunks, i, c.Size)
		}
		offs[i] = off
		off += c.Size
	}
	if off != size {
		return nil, fmt.Errorf("%w: chunks add up to %d bytes, file size is %d", ErrInvalidChunks, off, size)
	}
	offs[len(chunks)] = size
	return offs, nil
}

// hashHex is the hex form of a digest.
func hashHex(sum [32]byte) string { return hex.EncodeToString(sum[:]) }

// syncDir makes a rename or unlink in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// flock places a lock of the given kind on f without waiting.
func flock(f *os.File, how int) error {
	return unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
}

// Local reports whether the blob store is a folder of this node's own,
// which holds only the blobs this node wrote.
func (s *Store) Local() bool {
	_, local := s.blobs.(*localBlobs)
	return local
}

// Sweeper is the blob store's listing and deletion, if it has them; each
// deletion is bounded by Options.Timeout, like every other blob request.
func (s *Store) Sweeper() (Sweeper, bool) {
	sw, ok := s.blobs.(Sweeper)
	return timedSweeper{sw, s.opts.Timeout}, ok
}

type timedSweeper struct {
	Sweeper
	timeout time.Duration
}

func (t timedSweeper) Delete(ctx context.Context, key string) error {
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	return t.Sweeper.Delete(ctx, key)
}
