package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/sphere-sandbox/sphere/s3mount/miniotest"
)

const bucket = "bench"

// Object layout. Prefixes also get "dir/" marker objects, which s3fs
// needs to show a prefix as a directory.
const (
	bigKey     = "big/object.bin"
	listPrefix = "ls/"
	catPrefix  = "cat/"
	catSize    = 4 << 10
	// writeBlock is the size of each write(2) in the write test, and of
	// the block of random bytes repeated to make up the written file.
	writeBlock = 1 << 20
	// readBlock is the read size for mounts and in-process readers. FUSE
	// splits reads into requests of at most 128 KiB anyway.
	readBlock = 1 << 20
)

// env is the MinIO server and data every peer works on.
type env struct {
	o        options
	work     string // scratch directory: MinIO data, mount points
	server   *miniotest.Server
	host     string // 127.0.0.1:PORT
	client   *minio.Client
	block    []byte // random bytes written repeatedly by the write test
	canDrop  bool   // drop_caches is writable
	warnings []string
}

func startEnv(ctx context.Context, c *cleanups, o options) (*env, error) {
	work, err := os.MkdirTemp("", "spherebench-")
	if err != nil {
		return nil, err
	}
	// Never RemoveAll a directory a mount may still be on: the mounts'
	// clean-ups run first (they are registered later) and only remove
	// their own empty mount points.
	c.add(func() { os.RemoveAll(work) })
	bin := o.minioBin
	if bin == "" {
		if bin, err = miniotest.Binary(); err != nil {
			return nil, err
		}
	}
	say("starting MinIO (%s)", bin)
	s, err := miniotest.Launch(bin, work)
	if err != nil {
		return nil, err
	}
	c.add(s.Stop)
	e := &env{o: o, work: work, server: s, host: strings.TrimPrefix(s.Endpoint, "http://")}
	e.client, err = minio.New(e.host, &minio.Options{Creds: credentials.NewStaticV4(s.AccessKey, s.SecretKey, "")})
	if err != nil {
		return nil, err
	}
	if err := e.client.MakeBucket(ctx, bucket, minio.MakeBucketOptions{}); err != nil {
		return nil, fmt.Errorf("make bucket: %w", err)
	}
	e.block = make([]byte, writeBlock)
	_, _ = rand.NewChaCha8([32]byte{1}).Read(e.block)
	e.canDrop = dropCaches() == nil
	if !e.canDrop {
		e.warn("cannot drop the page cache (not root?): \"cold\" figures may be warm")
	}
	return e, nil
}

func (e *env) warn(format string, args ...any) {
	e.warnings = append(e.warnings, fmt.Sprintf(format, args...))
	say("warning: "+format, args...)
}

func (e *env) createData(ctx context.Context) error {
	start := time.Now()
	say("creating %d MiB of random bytes, %d listed objects, %d × 4 KiB objects", e.o.bigSize>>20, e.o.listCount, e.o.catCount)
	for _, dir := range []string{"big/", listPrefix, catPrefix} {
		if err := e.put(ctx, dir, nil); err != nil {
			return err
		}
	}
	if _, err := e.client.PutObject(ctx, bucket, bigKey, e.bigContent(), e.o.bigSize, minio.PutObjectOptions{}); err != nil {
		return fmt.Errorf("put %s: %w", bigKey, err)
	}
	err := parallel(ctx, e.o.listCount, func(ctx context.Context, i int) error {
		return e.put(ctx, listKey(i), listContent)
	})
	if err != nil {
		return err
	}
	err = parallel(ctx, e.o.catCount, func(ctx context.Context, i int) error {
		data := make([]byte, catSize)
		_, _ = rand.NewChaCha8([32]byte{3, byte(i), byte(i >> 8)}).Read(data)
		return e.put(ctx, catKey(i), data)
	})
	if err != nil {
		return err
	}
	say("data created in %v", time.Since(start).Round(time.Millisecond))
	return nil
}

// parallel runs f(0..n-1) on a few goroutines, stopping at the first
// error.
func parallel(ctx context.Context, n int, f func(context.Context, int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan int)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for i := range next {
				if err := f(ctx, i); err != nil {
					cancel(err)
				}
			}
		})
	}
	for i := 0; i < n && ctx.Err() == nil; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	return context.Cause(ctx)
}

// bigContent is the big object's bytes: always the same random ones.
func (e *env) bigContent() io.Reader {
	return io.LimitReader(rand.NewChaCha8([32]byte{2}), e.o.bigSize)
}

// listContent is the content of every listed object.
var listContent = make([]byte, 100)

func listKey(i int) string { return fmt.Sprintf("%sobject-%05d", listPrefix, i) }

func catKey(i int) string { return fmt.Sprintf("%sfile-%04d", catPrefix, i) }

func (e *env) put(ctx context.Context, key string, data []byte) error {
	if _, err := e.client.PutObject(ctx, bucket, key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}

// cold makes the next measurement start from disk: MinIO's files, and the
// kernel's cached pages and dentries of every mount.
func (e *env) cold() {
	if e.canDrop {
		if err := dropCaches(); err != nil {
			e.warn("drop caches: %v", err)
		}
	}
}

func dropCaches() error {
	syscall.Sync()
	return os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0)
}

// writeSource is the write test's data: e.block, repeated.
func (e *env) writeSource() io.Reader {
	return &repeatReader{block: e.block, left: e.o.bigSize}
}

type repeatReader struct {
	block []byte
	off   int
	left  int64
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), r.left)]
	n := copy(p, r.block[r.off:])
	r.off = (r.off + n) % len(r.block)
	r.left -= int64(n)
	return n, nil
}
