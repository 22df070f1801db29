package s3mount

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/sphere-sandbox/sphere/s3mount/miniotest"
)

const testBucket = "test-bucket"

// setup starts MinIO with an empty bucket and opens it; adjust may change
// the Config first.
func setup(t *testing.T, adjust func(*Config)) (*miniotest.Server, *Bucket) {
	t.Helper()
	s := miniotest.Start(t)
	s.MakeBucket(t, testBucket)
	return s, openBucket(t, s, adjust)
}

func openBucket(t *testing.T, s *miniotest.Server, adjust func(*Config)) *Bucket {
	t.Helper()
	cfg := Config{Endpoint: s.Endpoint, Bucket: testBucket, KeyID: s.AccessKey, Secret: s.SecretKey}
	if adjust != nil {
		adjust(&cfg)
	}
	b, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(b.Close)
	return b
}

// randomBytes is n reproducible pseudo-random bytes.
func randomBytes(seed uint64, n int) []byte {
	p := make([]byte, n)
	fill(rand.NewChaCha8(seedOf(seed)), p)
	return p
}

func seedOf(seed uint64) (s [32]byte) {
	s[0], s[1] = byte(seed), byte(seed>>8)
	return s
}

func fill(r *rand.ChaCha8, p []byte) {
	_, _ = r.Read(p) // never fails
}

// randomReader streams n reproducible pseudo-random bytes, for objects
// too large to keep in memory twice.
func randomReader(seed uint64, n int64) io.Reader {
	return io.LimitReader(rand.NewChaCha8(seedOf(seed)), n)
}

func put(t *testing.T, s *miniotest.Server, key string, data []byte) {
	t.Helper()
	if _, err := s.Client().PutObject(context.Background(), testBucket, key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

// putStream uploads size bytes from r and returns their SHA-256.
func putStream(t *testing.T, s *miniotest.Server, key string, r io.Reader, size int64) [32]byte {
	t.Helper()
	h := sha256.New()
	if _, err := s.Client().PutObject(context.Background(), testBucket, key, io.TeeReader(r, h), size, minio.PutObjectOptions{}); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
	return [32]byte(h.Sum(nil))
}

// get reads an object back with minio-go, not with the code under test.
func get(t *testing.T, s *miniotest.Server, key string) []byte {
	t.Helper()
	o, err := s.Client().GetObject(context.Background(), testBucket, key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer o.Close()
	data, err := io.ReadAll(o)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	return data
}
