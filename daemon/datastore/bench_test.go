package datastore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

// The benchmarks read one 1 GiB file, stored in MinIO both as chunks and as
// a single object (the reference: what minio-go alone achieves).
const (
	benchSize   = 1 << 30
	benchRead   = 1 << 20
	benchBucket = "ds-bench"
	benchObject = "whole/file"
)

var benchFile struct {
	once  sync.Once
	blobs Blobs
	refs  []ChunkRef
	sum   [32]byte
}

func benchFixture(b *testing.B) (Blobs, []ChunkRef) {
	srv := minioServer(b)
	benchFile.once.Do(func() {
		ctx := context.Background()
		blobs, err := NewS3Blobs(ctx, srv.Endpoint, benchBucket, srv.AccessKey, srv.SecretKey, "chunks")
		if err != nil {
			b.Fatal(err)
		}
		data := randomBytes(benchSize, 42)
		benchFile.sum = sha256.Sum256(data)
		s, err := New(blobs, Options{CacheDir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		w := s.NewWriter(ctx, Generation{})
		if _, err := w.Write(data); err != nil {
			b.Fatal(err)
		}
		if benchFile.refs, _, err = w.Close(); err != nil {
			b.Fatal(err)
		}
		if _, err := srv.Client().PutObject(ctx, benchBucket, benchObject, bytes.NewReader(data), benchSize, minio.PutObjectOptions{}); err != nil {
			b.Fatal(err)
		}
		benchFile.blobs = blobs
	})
	if benchFile.blobs == nil {
		b.Fatal("fixture failed")
	}
	return benchFile.blobs, benchFile.refs
}

// readAll reads r front to back in benchRead reads and checks the content
// when check is set.
func readAll(b *testing.B, r io.ReaderAt, check bool) {
	buf := make([]byte, benchRead)
	h := sha256.New()
	var off int64
	for {
		n, err := r.ReadAt(buf, off)
		if check {
			h.Write(buf[:n])
		}
		off += int64(n)
		if err == io.EOF {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	if off != benchSize {
		b.Fatalf("read %d bytes, want %d", off, benchSize)
	}
	if check && [32]byte(h.Sum(nil)) != benchFile.sum {
		b.Fatal("read the wrong bytes")
	}
}

// BenchmarkReadCold: every iteration reads through an empty cache, so all
// of it comes from MinIO (and fills the cache).
func BenchmarkReadCold(b *testing.B) {
	blobs, refs := benchFixture(b)
	b.SetBytes(benchSize)
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		dir := b.TempDir()
		s, err := New(blobs, Options{CacheDir: dir, CacheBytes: 2 * benchSize})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		readAll(b, s.Open(refs, benchSize), i == 0)
		b.StopTimer()
		s.Close()
		os.RemoveAll(dir)
		b.StartTimer()
	}
}

// BenchmarkReadColdFullCache is BenchmarkReadCold in the steady state of a
// long-running daemon: the cache is full, so every chunk admitted evicts
// (and recycles the file of) another.
func BenchmarkReadColdFullCache(b *testing.B) {
	blobs, refs := benchFixture(b)
	s := newStore(b, blobs, Options{CacheBytes: benchSize / 4})
	readAll(b, s.Open(refs, benchSize), true)
	b.SetBytes(benchSize)
	b.ResetTimer()
	for range b.N {
		readAll(b, s.Open(refs, benchSize), false)
	}
}

// BenchmarkReadWarm: the file is cached; reads are preads on cache files.
func BenchmarkReadWarm(b *testing.B) {
	blobs, refs := benchFixture(b)
	s := newStore(b, blobs, Options{CacheBytes: 2 * benchSize})
	readAll(b, s.Open(refs, benchSize), true)
	b.SetBytes(benchSize)
	b.ResetTimer()
	for range b.N {
		readAll(b, s.Open(refs, benchSize), false)
	}
}

// BenchmarkLocalFileCold: materializing the whole file from MinIO.
func BenchmarkLocalFileCold(b *testing.B) {
	blobs, refs := benchFixture(b)
	b.SetBytes(benchSize)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		dir := b.TempDir()
		s, err := New(blobs, Options{CacheDir: dir, CacheBytes: 2 * benchSize})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		f, err := s.LocalFile(context.Background(), refs, benchSize)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		f.Close()
		s.Close()
		os.RemoveAll(dir)
		b.StartTimer()
	}
}

// BenchmarkLocalFileRead: reading the materialized file, as FUSE
// passthrough would have the kernel do.
func BenchmarkLocalFileRead(b *testing.B) {
	blobs, refs := benchFixture(b)
	s := newStore(b, blobs, Options{CacheBytes: 2 * benchSize})
	f, err := s.LocalFile(context.Background(), refs, benchSize)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	readAll(b, f, true)
	b.SetBytes(benchSize)
	b.ResetTimer()
	for range b.N {
		readAll(b, f, false)
	}
}

// BenchmarkMinioGetObject is the reference: one GetObject of the same
// bytes, read in benchRead pieces.
func BenchmarkMinioGetObject(b *testing.B) {
	benchFixture(b)
	c := minioServer(b).Client()
	buf := make([]byte, benchRead)
	b.SetBytes(benchSize)
	b.ResetTimer()
	for range b.N {
		obj, err := c.GetObject(context.Background(), benchBucket, benchObject, minio.GetObjectOptions{})
		if err != nil {
			b.Fatal(err)
		}
		// Hide io.Discard's ReadFrom, which would read in 8 KiB pieces.
		n, err := io.CopyBuffer(struct{ io.Writer }{io.Discard}, obj, buf)
		obj.Close()
		if err != nil || n != benchSize {
			b.Fatalf("read %d bytes: %v", n, err)
		}
	}
}

// BenchmarkWrite: chunking, hashing and uploading to MinIO (chunks already
// there are skipped after a HEAD, so this measures a fresh prefix).
func BenchmarkWrite(b *testing.B) {
	srv := minioServer(b)
	data := randomBytes(256<<20, 43)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		blobs, err := NewS3Blobs(context.Background(), srv.Endpoint, benchBucket, srv.AccessKey, srv.SecretKey, fmt.Sprintf("write-%d-%d", time.Now().UnixNano(), i))
		if err != nil {
			b.Fatal(err)
		}
		s := newStore(b, blobs, Options{})
		b.StartTimer()
		w := s.NewWriter(context.Background(), Generation{})
		if _, err := w.Write(data); err != nil {
			b.Fatal(err)
		}
		if _, _, err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
