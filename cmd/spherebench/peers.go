package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/sphere-sandbox/sphere/s3mount"
)

// A peer is one way to use the bucket. Each method does one piece of the
// work once and returns how long it took; measure turns times into rates.
type peer interface {
	name() string
	// seqRead reads the big object from start to end.
	seqRead(ctx context.Context) (time.Duration, error)
	// list lists the listPrefix directory (`ls -l` where there is one).
	list(ctx context.Context) (time.Duration, error)
	// catAll reads each of the small cat objects, one open and read each.
	catAll(ctx context.Context) (time.Duration, error)
	// write writes a file of bigSize bytes, sequentially, and closes it.
	write(ctx context.Context) (time.Duration, error)
}

// directPeer is the reference: minio-go, in-process, as an application
// linking an S3 SDK would do it.
type directPeer struct{ e *env }

func (p *directPeer) name() string { return "direct minio-go" }

func (p *directPeer) seqRead(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	o, err := p.e.client.GetObject(ctx, bucket, bigKey, minio.GetObjectOptions{})
	if err != nil {
		return 0, err
	}
	defer o.Close()
	n, err := io.Copy(io.Discard, o)
	if err == nil && n != p.e.o.bigSize {
		err = fmt.Errorf("read %d bytes of %d", n, p.e.o.bigSize)
	}
	return time.Since(start), err
}

// list is the bare listing (names, sizes and times), no stat per entry.
func (p *directPeer) list(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	n := 0
	for o := range p.e.client.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: listPrefix}) {
		if o.Err != nil {
			return 0, o.Err
		}
		n++
	}
	return time.Since(start), p.e.checkCount(n-1, ctx) // the "ls/" marker is listed too
}

func (p *directPeer) catAll(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	for i := range p.e.o.catCount {
		o, err := p.e.client.GetObject(ctx, bucket, catKey(i), minio.GetObjectOptions{})
		if err != nil {
			return 0, err
		}
		n, err := io.Copy(io.Discard, o)
		o.Close()
		if err != nil || n != catSize {
			return 0, fmt.Errorf("%s: %d bytes, %v", catKey(i), n, err)
		}
	}
	return time.Since(start), nil
}

func (p *directPeer) write(ctx context.Context) (time.Duration, error) {
	key := "write/direct.bin"
	start := time.Now()
	_, err := p.e.client.PutObject(ctx, bucket, key, p.e.writeSource(), p.e.o.bigSize, minio.PutObjectOptions{})
	took := time.Since(start)
	_ = p.e.client.RemoveObject(ctx, bucket, key, minio.RemoveObjectOptions{})
	return took, err
}

func (e *env) checkCount(n int, ctx context.Context) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if n != e.o.listCount {
		return fmt.Errorf("listed %d objects, want %d", n, e.o.listCount)
	}
	return nil
}

// s3mountPeer is sphere's S3 code in-process: the ceiling of what a sphere
// mount can reach, FUSE costs aside. Each run opens a fresh Bucket, so
// nothing is cached from the run before.
type s3mountPeer struct{ env *env }

func (p *s3mountPeer) name() string { return "s3mount in-process" }

func (p *s3mountPeer) open(ctx context.Context, readOnly bool) (*s3mount.Bucket, error) {
	s := p.env.server
	return s3mount.Open(ctx, s3mount.Config{Endpoint: s.Endpoint, Bucket: bucket, KeyID: s.AccessKey, Secret: s.SecretKey, ReadOnly: readOnly})
}

func (p *s3mountPeer) seqRead(ctx context.Context) (time.Duration, error) {
	b, err := p.open(ctx, true)
	if err != nil {
		return 0, err
	}
	defer b.Close()
	start := time.Now()
	r, err := b.Open(ctx, bigKey)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	// Reads the size FUSE sends (128 KiB), at increasing offsets, as the
	// kernel does for a sequential reader.
	buf := make([]byte, 128<<10)
	var off int64
	for {
		n, err := r.ReadAtContext(ctx, buf, off)
		off += int64(n)
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, err
		}
	}
	if off != p.env.o.bigSize {
		return 0, fmt.Errorf("read %d bytes of %d", off, p.env.o.bigSize)
	}
	return time.Since(start), nil
}

func (p *s3mountPeer) list(ctx context.Context) (time.Duration, error) {
	b, err := p.open(ctx, true)
	if err != nil {
		return 0, err
	}
	defer b.Close()
	start := time.Now()
	es, err := b.List(ctx, listPrefix[:len(listPrefix)-1])
	if err != nil {
		return 0, err
	}
	return time.Since(start), p.env.checkCount(len(es), ctx)
}

func (p *s3mountPeer) catAll(ctx context.Context) (time.Duration, error) {
	b, err := p.open(ctx, true)
	if err != nil {
		return 0, err
	}
	defer b.Close()
	buf := make([]byte, 128<<10)
	start := time.Now()
	for i := range p.env.o.catCount {
		r, err := b.Open(ctx, catKey(i))
		if err != nil {
			return 0, err
		}
		n, err := r.ReadAt(buf, 0)
		r.Close()
		if err != io.EOF || n != catSize {
			return 0, fmt.Errorf("%s: %d bytes, %v", catKey(i), n, err)
		}
	}
	return time.Since(start), nil
}

func (p *s3mountPeer) write(ctx context.Context) (time.Duration, error) {
	b, err := p.open(ctx, false)
	if err != nil {
		return 0, err
	}
	defer b.Close()
	key := "write/s3mount.bin"
	start := time.Now()
	w, err := b.Create(ctx, key)
	if err != nil {
		return 0, err
	}
	if _, err := io.CopyBuffer(w, p.env.writeSource(), make([]byte, writeBlock)); err != nil {
		_ = w.Abort()
		return 0, err
	}
	if err := w.Close(); err != nil {
		return 0, err
	}
	took := time.Since(start)
	return took, b.Remove(ctx, key)
}

// mountPeer uses a mounted directory showing the bucket's root, through
// ordinary files and processes, as a user in a notebook would.
type mountPeer struct {
	label string
	e     *env
	dir   string
}

func (p *mountPeer) name() string { return p.label }

func (p *mountPeer) seqRead(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	f, err := os.Open(filepath.Join(p.dir, bigKey))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n, err := copyCtx(ctx, io.Discard, f)
	if err == nil && n != p.e.o.bigSize {
		err = fmt.Errorf("read %d bytes of %d", n, p.e.o.bigSize)
	}
	return time.Since(start), err
}

func (p *mountPeer) list(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	cmd := exec.CommandContext(ctx, "ls", "-l", filepath.Join(p.dir, listPrefix)) // stdout: /dev/null
	if out, err := cmd.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("ls -l: %v: %s", err, out)
	}
	took := time.Since(start)
	es, err := os.ReadDir(filepath.Join(p.dir, listPrefix))
	if err != nil {
		return 0, err
	}
	return took, p.e.checkCount(len(es), ctx)
}

// catAll spawns one cat per file, like `for f in *; do cat $f; done`.
func (p *mountPeer) catAll(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	for i := range p.e.o.catCount {
		cmd := exec.CommandContext(ctx, "cat", filepath.Join(p.dir, catKey(i))) // stdout: /dev/null
		if out, err := cmd.CombinedOutput(); err != nil && ctx.Err() == nil {
			return 0, fmt.Errorf("cat %s: %v: %s", catKey(i), err, out)
		}
	}
	return time.Since(start), ctx.Err()
}

func (p *mountPeer) write(ctx context.Context) (time.Duration, error) {
	path := filepath.Join(p.dir, "write-"+filepath.Base(p.dir)+".bin")
	start := time.Now()
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	_, err = copyCtx(ctx, f, p.e.writeSource())
	// Close is where FUSE S3 clients upload (s3fs) or finish uploading.
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	took := time.Since(start)
	if rerr := os.Remove(path); err == nil {
		err = rerr
	}
	return took, err
}

// copyCtx copies in writeBlock pieces, stopping when ctx ends: reads from
// a FUSE mount cannot be interrupted otherwise.
func copyCtx(ctx context.Context, dst io.Writer, src io.Reader) (int64, error) {
	buf := make([]byte, readBlock)
	var total int64
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return total, werr
			}
			total += int64(n)
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}
