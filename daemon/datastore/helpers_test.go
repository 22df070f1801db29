package datastore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/sphere-sandbox/sphere/internal/testwait"
	"github.com/sphere-sandbox/sphere/s3mount/miniotest"
)

// One MinIO server serves the whole test binary: starting one takes
// seconds, and each test works in its own bucket.
var sharedMinio struct {
	once sync.Once
	srv  *miniotest.Server
	dir  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedMinio.srv != nil {
		sharedMinio.srv.Stop()
		os.RemoveAll(sharedMinio.dir)
	}
	os.Exit(code)
}

func minioServer(tb testing.TB) *miniotest.Server {
	tb.Helper()
	sharedMinio.once.Do(func() {
		bin, err := miniotest.Binary()
		if err != nil {
			sharedMinio.err = err
			return
		}
		if sharedMinio.dir, err = os.MkdirTemp("", "datastore-minio-"); err != nil {
			sharedMinio.err = err
			return
		}
		if sharedMinio.srv, sharedMinio.err = miniotest.Launch(bin, sharedMinio.dir); sharedMinio.err == nil {
			sharedMinio.err = waitS3Ready(sharedMinio.srv)
		}
	})
	if sharedMinio.err != nil {
		tb.Fatalf("MinIO: %v", sharedMinio.err)
	}
	return sharedMinio.srv
}

// waitS3Ready waits until the server serves S3 requests: it reports itself
// live a moment before it has initialized, and answers 503 until then.
func waitS3Ready(srv *miniotest.Server) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	c := srv.Client()
	for {
		_, err := c.ListBuckets(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("MinIO not serving S3: %w", err)
		case <-tick.C:
		}
	}
}

var bucketSeq atomic.Int64

// testBlobs is a real blob store plus the means to damage it.
type testBlobs struct {
	Blobs
	corrupt func(t *testing.T, hash string) // flip one byte of a blob
	remove  func(t *testing.T, hash string)
}

func localTestBlobs(t *testing.T) *testBlobs {
	dir := t.TempDir()
	b, err := NewLocalBlobs(dir)
	if err != nil {
		t.Fatal(err)
	}
	path := func(h string) string { return filepath.Join(dir, h[:2], h) }
	return &testBlobs{
		Blobs: b,
		corrupt: func(t *testing.T, h string) {
			data, err := os.ReadFile(path(h))
			if err != nil {
				t.Fatal(err)
			}
			data[len(data)/2] ^= 0x01
			if err := os.WriteFile(path(h), data, 0o644); err != nil {
				t.Fatal(err)
			}
		},
		remove: func(t *testing.T, h string) {
			if err := os.Remove(path(h)); err != nil {
				t.Fatal(err)
			}
		},
	}
}

func minioTestBlobs(t *testing.T) *testBlobs {
	srv := minioServer(t)
	ctx := context.Background()
	bucket := fmt.Sprintf("ds-test-%d", bucketSeq.Add(1))
	const prefix = "blobs/v1"
	b, err := NewS3Blobs(ctx, srv.Endpoint, bucket, srv.AccessKey, srv.SecretKey, prefix)
	if err != nil {
		t.Fatal(err)
	}
	c := srv.Client()
	key := func(h string) string { return prefix + "/" + h }
	return &testBlobs{
		Blobs: b,
		corrupt: func(t *testing.T, h string) {
			obj, err := c.GetObject(ctx, bucket, key(h), minio.GetObjectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			data, err := io.ReadAll(obj)
			obj.Close()
			if err != nil {
				t.Fatal(err)
			}
			data[len(data)/2] ^= 0x01
			if _, err := c.PutObject(ctx, bucket, key(h), bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
				t.Fatal(err)
			}
		},
		remove: func(t *testing.T, h string) {
			if err := c.RemoveObject(ctx, bucket, key(h), minio.RemoveObjectOptions{}); err != nil {
				t.Fatal(err)
			}
		},
	}
}

// forEachBlobStore runs f against a local folder and a real MinIO bucket.
func forEachBlobStore(t *testing.T, f func(t *testing.T, b *testBlobs)) {
	t.Run("local", func(t *testing.T) { f(t, localTestBlobs(t)) })
	t.Run("minio", func(t *testing.T) { f(t, minioTestBlobs(t)) })
}

// countingBlobs counts fetches and the most that ran at once, and can run
// a check inside every one (that is, while a fetch is in progress). It
// wraps a built-in store and keeps its fast path (getInto).
type countingBlobs struct {
	Blobs
	gets, inflight, maxInflight atomic.Int64
	during                      func()
}

func (c *countingBlobs) enter() {
	c.gets.Add(1)
	n := c.inflight.Add(1)
	for {
		m := c.maxInflight.Load()
		if n <= m || c.maxInflight.CompareAndSwap(m, n) {
			break
		}
	}
	if c.during != nil {
		c.during()
	}
}

func (c *countingBlobs) Get(ctx context.Context, hash string) ([]byte, error) {
	c.enter()
	defer c.inflight.Add(-1)
	return c.Blobs.Get(ctx, hash)
}

func (c *countingBlobs) getInto(ctx context.Context, hash string, buf []byte) error {
	c.enter()
	defer c.inflight.Add(-1)
	return c.Blobs.(blobReader).getInto(ctx, hash, buf)
}

// newStore opens a Store over b with a fresh cache dir, closed at the end.
func newStore(t testing.TB, b Blobs, opts Options) *Store {
	t.Helper()
	if opts.CacheDir == "" {
		opts.CacheDir = t.TempDir()
	}
	s, err := New(b, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	var s [32]byte
	s[0] = byte(seed)
	s[1] = byte(seed >> 8)
	rand.NewChaCha8(s).Read(b)
	return b
}

// store writes data as a file through a Writer, in pieces of awkward sizes.
func storeBytes(t testing.TB, s *Store, data []byte) []ChunkRef {
	t.Helper()
	w := s.NewWriter(context.Background(), Generation{})
	for rest := data; len(rest) > 0; {
		n := min(len(rest), 100_003)
		if _, err := w.Write(rest[:n]); err != nil {
			t.Fatal(err)
		}
		rest = rest[n:]
	}
	refs, size, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}
	if size != int64(len(data)) {
		t.Fatalf("Close size = %d, want %d", size, len(data))
	}
	return refs
}

// readSeq reads a whole file through ReadAt in bufSize reads.
func readSeq(r io.ReaderAt, size int64, bufSize int) ([]byte, error) {
	out := make([]byte, 0, size)
	buf := make([]byte, bufSize)
	for off := int64(0); ; {
		n, err := r.ReadAt(buf, off)
		out = append(out, buf[:n]...)
		off += int64(n)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

func sum(b []byte) [32]byte { return sha256.Sum256(b) }

// cacheDiskBytes is what the files under dir take: apparent sizes rounded
// to blocks, and the blocks the file system reports.
func cacheDiskBytes(t testing.TB, dir string) (rounded, blocks int64) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) { // renamed or evicted while we walked
				return nil
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		rounded += diskCost(fi.Size())
		blocks += fi.Sys().(*syscall.Stat_t).Blocks * 512
		return nil
	})
	if err != nil {
		t.Errorf("walk %s: %v", dir, err)
	}
	return rounded, blocks
}

// waitCached waits until every chunk of refs is in the cache: chunks are
// written to it after the reader has its bytes, in the background.
func waitCached(t testing.TB, s *Store, refs []ChunkRef) {
	t.Helper()
	testwait.For(t, 10*time.Second, "the chunks to be cached", func() bool { return s.Cached(refs) })
}
