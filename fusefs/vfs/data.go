package vfs

import (
	"context"
	"io"
	"os"
	"time"

	"github.com/sphere-sandbox/sphere/policy"
)

// The data planes. Store is the catalogue and policy: which resources exist,
// who may do what. What is inside a dataset or a bucket comes from two more
// interfaces the daemon implements over its blob store and its S3 clients,
// given to New as options. They are separate from Store because they are
// separate machinery (chunks and a local cache; S3 clients and their
// readahead), because a tree without them still serves secrets and lists
// datasets and connectors (their contents answer ErrNotSupported), and so
// that the tests can fake each one alone.
//
// Nothing here decides anything: the tree asks policy (Tree.authorize)
// before each call, and calls that change something carry the principal so
// the daemon can check again, as the CLI's commands do. Errors follow the
// rule of Store: wrap this package's error values (ErrNotFound, ErrNotEmpty,
// ErrNoSpace, ErrUnavailable, ...) whenever one says what happened; anything
// else is EIO and a log line. Calls that take a context return when it is
// done.

// DatasetEntry is a file or directory of a dataset.
type DatasetEntry struct {
	Name  string // the last element of its path ("" for the dataset's root)
	Dir   bool
	Size  int64 // files only
	MTime time.Time
	// Ino is a number of the entry, stable for its path within the dataset
	// and unique in it; not 0. The tree derives the inode number from it and
	// the dataset's ID.
	Ino uint64
}

// Datasets reaches the contents of datasets. Paths are relative to the
// dataset's root, "/"-separated, without a leading or trailing "/"; "" is
// the root itself. The tree only passes paths whose elements ValidEntryName
// accepts.
type Datasets interface {
	// DatasetInfo says whether dataset is sealed (read-only and immutable
	// forever) and how many bytes it may still grow by under its size limit
	// (free, -1: no limit).
	DatasetInfo(dataset policy.ID) (sealed bool, free int64, err error)
	// DatasetStat returns the entry at path (ErrNotFound if none).
	DatasetStat(dataset policy.ID, path string) (DatasetEntry, error)
	// DatasetList returns the entries of the directory dir, in a stable
	// order (ErrNotFound if none, ErrNotDir if a file).
	DatasetList(dataset policy.ID, dir string) ([]DatasetEntry, error)
	// DatasetOpen opens the content of the file at path for reading. The
	// content of a sealed dataset's file never changes; an initializing
	// one's is the content committed when it was opened.
	DatasetOpen(ctx context.Context, dataset policy.ID, path string) (FileContent, error)
	// DatasetCommit stores content (size bytes from offset 0) as the whole
	// new content of the file at path, creating it if needed, as principal
	// p: chunked, uploaded and recorded in the replicated state before it
	// returns. The daemon checks policy again and the size limit
	// (ErrNoSpace); a sealed dataset is ErrReadOnly. content stays the
	// caller's: read it with ReadAt (its offset is unspecified), never
	// close or keep it.
	DatasetCommit(ctx context.Context, p policy.ID, dataset policy.ID, path string, content *os.File, size int64) error
	// DatasetMkdir creates the directory path (ErrExists if something is
	// there; ErrNotFound if its parent is not).
	DatasetMkdir(ctx context.Context, p policy.ID, dataset policy.ID, path string) error
	// DatasetRemove removes the file or the empty directory at path
	// (ErrNotEmpty if it holds anything).
	DatasetRemove(ctx context.Context, p policy.ID, dataset policy.ID, path string) error
	// SpoolDir is a local directory on a disk with room for files being
	// written: each open file being written is spooled to a file there
	// (unlinked at once) until it is committed.
	SpoolDir() string
}

// FileContent is an open file's content: io.ReaderAt is safe for concurrent
// use (the kernel reads ahead in parallel).
type FileContent interface {
	io.ReaderAt
	io.Closer
	// LocalFile is a local file holding the whole verified content, if there
	// is one: the kernel then reads from it directly (FUSE passthrough).
	// It stays the FileContent's; Close closes it.
	LocalFile() (*os.File, bool)
}

// ObjectInfo is an object of a bucket, or a "/"-separated prefix (Dir).
type ObjectInfo struct {
	Name  string // the last element of its path
	Dir   bool
	Size  int64
	MTime time.Time
}

// Buckets reaches the buckets of S3 connectors.
type Buckets interface {
	// Bucket returns the bucket of an activated connector, with the
	// connector's credentials. It is asked on every operation, so it should
	// be cheap (a client kept per connector).
	Bucket(ctx context.Context, connector policy.ID) (Bucket, error)
}

// Bucket is one connector's bucket. Paths are as for Datasets: relative to
// the bucket's root ("" is the root), "/"-separated, objects are files and
// prefixes are directories. A bucket that cannot be reached answers
// ErrUnavailable within a bounded time, never hangs.
type Bucket interface {
	// ReadOnly reports whether the connector is read-only: every change
	// is then refused (ErrReadOnly) before the bucket is asked.
	ReadOnly() bool
	// Stat returns the object or the prefix at path (ErrNotFound if none).
	Stat(ctx context.Context, path string) (ObjectInfo, error)
	// List returns the objects and prefixes directly under dir.
	List(ctx context.Context, dir string) ([]ObjectInfo, error)
	// Open opens the object at path for reading. The tree keeps one
	// ObjectReader per open file, so it may hold that file's readahead.
	// ctx bounds the call, not the reader's life (nor the writer's, for
	// Create).
	Open(ctx context.Context, path string) (ObjectReader, error)
	// Create starts writing the object at path: what is written replaces
	// it when the writer is closed.
	Create(ctx context.Context, path string) (ObjectWriter, error)
	// Remove removes the object at path, or the empty prefix at path
	// (ErrNotEmpty if it holds anything).
	Remove(ctx context.Context, path string) error
	// Mkdir creates the prefix path (a directory marker).
	Mkdir(ctx context.Context, path string) error
	// Rename moves the object from to the path to, replacing what is
	// there (files only: the tree never asks it for a prefix).
	Rename(ctx context.Context, from, to string) error
}

// ObjectReader reads one object; ReadAt is safe for concurrent use and
// bounded in time (ErrUnavailable rather than a hang).
type ObjectReader interface {
	io.ReaderAt
	io.Closer
}

// ObjectWriter writes one object, sequentially: the tree only calls WriteAt
// with off equal to the bytes written so far. Close commits the object (it
// is visible in the bucket once Close returns nil); Abort drops what was
// written. Exactly one of them is called, once.
type ObjectWriter interface {
	WriteAt(p []byte, off int64) (int, error)
	Close() error
	Abort()
}

// An Option configures a Tree.
type Option func(*Tree)

// WithDatasets serves the contents of datasets/NAME/ from d.
func WithDatasets(d Datasets) Option { return func(t *Tree) { t.datasets = d } }

// WithBuckets serves the contents of s3/NAME/ from b.
func WithBuckets(b Buckets) Option { return func(t *Tree) { t.buckets = b } }
