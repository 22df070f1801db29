package s3mount

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/sphere-sandbox/sphere/internal/testwait"
)

// readAll reads r sequentially in FUSE-sized requests, as the kernel does.
func readAll(t *testing.T, r *Reader, step int, each func()) []byte {
	t.Helper()
	var out bytes.Buffer
	p := make([]byte, step)
	for off := int64(0); ; {
		n, err := r.ReadAt(p, off)
		out.Write(p[:n])
		off += int64(n)
		if each != nil {
			each()
		}
		if err == io.EOF {
			return out.Bytes()
		}
		if err != nil {
			t.Fatalf("ReadAt(%d): %v", off, err)
		}
	}
}

func TestReadSmallObjects(t *testing.T) {
	s, b := setup(t, nil)
	ctx := context.Background()
	sizes := []int{0, 1, 4096, headSize - 1, headSize, headSize + 1, 3 << 20, chunkSize, chunkSize + 1}
	for i, size := range sizes {
		key := fmt.Sprintf("small/%d", size)
		data := randomBytes(uint64(i), size)
		put(t, s, key, data)
		r, err := b.Open(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if e := r.Entry(); e.Size != int64(size) || e.ETag == "" {
			t.Errorf("%s: Entry() = %+v", key, e)
		}
		for _, step := range []int{4096, 128 << 10, 1 << 20} {
			if got := readAll(t, r, step, nil); !bytes.Equal(got, data) {
				t.Errorf("%s read in %d-byte steps: %d bytes differ from the %d written", key, step, len(got), len(data))
			}
		}
		// Past the end: EOF, and a short read at the end says EOF too.
		if n, err := r.ReadAt(make([]byte, 10), int64(size)); n != 0 || err != io.EOF {
			t.Errorf("%s: ReadAt(end) = %d, %v", key, n, err)
		}
		if size > 0 {
			p := make([]byte, 10)
			if n, err := r.ReadAt(p, int64(size-1)); n != 1 || err != io.EOF || p[0] != data[size-1] {
				t.Errorf("%s: ReadAt(last byte) = %d, %v", key, n, err)
			}
		}
		if err := r.Close(); err != nil {
			t.Error(err)
		}
		if _, err := r.ReadAt(make([]byte, 1), 0); err == nil && size > 0 {
			t.Errorf("%s: ReadAt after Close succeeded", key)
		}
	}
	put(t, s, "dir/x", nil)
	for path, kind := range map[string]error{"": ErrIsDir, "dir": ErrIsDir, "nope": ErrNotFound, "dir/../x": ErrInvalid} {
		if _, err := b.Open(ctx, path); !errors.Is(err, kind) {
			t.Errorf("Open(%q) = %v, want %v", path, err, kind)
		}
	}
}

func TestReadLargeObject(t *testing.T) {
	s, b := setup(t, nil)
	ctx := context.Background()
	const size = 100 << 20
	data := randomBytes(7, size)
	put(t, s, "large", data)
	want := sha256.Sum256(data)

	r, err := b.Open(ctx, "large")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got := sha256.Sum256(readAll(t, r, 128<<10, nil)); got != want {
		t.Fatal("sequential read: SHA-256 differs")
	}

	// Random reads of random sizes, some straddling chunk boundaries,
	// some large, some in the head.
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 200 {
		n := rng.IntN(3 << 20)
		off := rng.Int64N(size)
		switch i % 4 {
		case 0:
			off = int64(rng.IntN(size/chunkSize))*chunkSize - int64(n/2) // across a boundary
		case 1:
			off = rng.Int64N(headSize)
		}
		off = max(off, 0)
		p := make([]byte, n)
		got, err := r.ReadAt(p, off)
		end := min(off+int64(n), size)
		if got != int(end-off) || (err != nil && !(err == io.EOF && end == size)) {
			t.Fatalf("ReadAt(%d bytes at %d) = %d, %v", n, off, got, err)
		}
		if !bytes.Equal(p[:got], data[off:end]) {
			t.Fatalf("ReadAt(%d bytes at %d): wrong bytes", n, off)
		}
	}
	if b := r.Buffered(); b > MaxReaderBuffer {
		t.Errorf("Buffered() = %d > %d", b, MaxReaderBuffer)
	}
}

// Concurrent reads of one handle, as FUSE sends them, in and out of order.
func TestReadConcurrent(t *testing.T) {
	s, b := setup(t, nil)
	const size = 40 << 20
	data := randomBytes(3, size)
	put(t, s, "obj", data)
	r, err := b.Open(context.Background(), "obj")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	const step = 128 << 10
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := range 4 {
		wg.Go(func() {
			p := make([]byte, step)
			// Each goroutine takes every 4th block: together sequential.
			for off := int64(g * step); off < size; off += 4 * step {
				n, err := r.ReadAt(p, off)
				if err != nil && err != io.EOF {
					errs <- err
					return
				}
				if !bytes.Equal(p[:n], data[off:off+int64(n)]) {
					errs <- fmt.Errorf("wrong bytes at %d", off)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// Reading a 256 MiB object from start to end holds at most MaxReaderBuffer
// bytes at any time, and uses readahead (more than one chunk) to do it.
func TestReaderMemoryBound(t *testing.T) {
	s, b := setup(t, nil)
	const size = 256 << 20
	want := putStream(t, s, "big", randomReader(9, size), size)
	r, err := b.Open(context.Background(), "big")
	if err != nil {
		t.Fatal(err)
	}
	var peak int64
	h := sha256.New()
	p := make([]byte, 128<<10)
	for off := int64(0); off < size; {
		n, err := r.ReadAt(p, off)
		if err != nil && err != io.EOF {
			t.Fatal(err)
		}
		h.Write(p[:n])
		off += int64(n)
		buffered := r.Buffered()
		if buffered > MaxReaderBuffer {
			t.Fatalf("at %d: Buffered() = %d > MaxReaderBuffer %d", off, buffered, MaxReaderBuffer)
		}
		peak = max(peak, buffered)
	}
	if [32]byte(h.Sum(nil)) != want {
		t.Error("SHA-256 differs")
	}
	if peak <= 2*chunkSize {
		t.Errorf("peak buffer %d: readahead never went beyond the current chunk", peak)
	}
	t.Logf("peak buffered: %d MiB of a %d MiB object (bound %d MiB)", peak>>20, size>>20, MaxReaderBuffer>>20)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if b := r.Buffered(); b != 0 {
		t.Errorf("after Close: Buffered() = %d", b)
	}
}

// An object replaced while open is not read as a mix of two versions.
func TestReadReplacedObject(t *testing.T) {
	s, b := setup(t, nil)
	put(t, s, "obj", randomBytes(1, 2*chunkSize))
	r, err := b.Open(context.Background(), "obj")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	put(t, s, "obj", randomBytes(2, 2*chunkSize))
	_, err = r.ReadAt(make([]byte, 4096), chunkSize+5)
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("ReadAt after replacement = %v, want ErrUnavailable", err)
	}
}

// The kernel sends a sequential reader's requests several at a time, and
// they may arrive out of order: that is still sequential reading, served
// by readahead rather than a GET per request.
func TestReadOutOfOrder(t *testing.T) {
	s, b := setup(t, nil)
	const size, step = 4 * chunkSize, 128 << 10
	data := randomBytes(4, size)
	put(t, s, "obj", data)
	r, err := b.Open(context.Background(), "obj")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	p := make([]byte, step)
	var peak int64
	for block := int64(0); block < size/step; block += 4 {
		for _, i := range []int64{2, 0, 3, 1} { // each group of 4, shuffled
			off := (block + i) * step
			if n, err := r.ReadAt(p, off); err != nil && err != io.EOF || !bytes.Equal(p[:n], data[off:off+int64(n)]) {
				t.Fatalf("ReadAt(%d) = %d, %v or wrong bytes", off, n, err)
			}
			peak = max(peak, r.Buffered())
		}
	}
	if peak < headSize+2*chunkSize {
		t.Errorf("peak buffer %d: out-of-order sequential reads got no readahead", peak)
	}
}

// The kernel opens a file right after looking it up: the lookup's GET
// serves the open, so a small file costs one request. With the server
// frozen after the lookup, opening and reading the file still work; this
// Bucket's own write, or the cache's second passing, makes the next open
// ask the server again.
func TestOpenAfterStatMakesNoRequest(t *testing.T) {
	s, b := setup(t, func(c *Config) { c.Timeout = 2 * time.Second })
	ctx := context.Background()
	data := randomBytes(7, 4096)
	put(t, s, "cat/f", data)
	if e, err := b.Stat(ctx, "cat/f"); err != nil || e.Size != int64(len(data)) {
		t.Fatalf("Stat = %+v, %v", e, err)
	}

	s.Pause(t)
	if e, err := b.Stat(ctx, "cat/f"); err != nil || e.Size != int64(len(data)) {
		t.Errorf("Stat again, server frozen = %+v, %v", e, err)
	}
	r, err := b.Open(ctx, "cat/f")
	if err != nil {
		t.Fatalf("Open after Stat, server frozen: %v", err)
	}
	if got := readAll(t, r, 128<<10, nil); !bytes.Equal(got, data) {
		t.Errorf("read %d bytes, not the %d written", len(got), len(data))
	}
	r.Close()
	s.Resume()

	w, err := b.Create(ctx, "cat/f")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("mine")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := openAndRead(t, b, "cat/f"); string(got) != "mine" {
		t.Errorf("after this Bucket's write: %q", got)
	}

	put(t, s, "cat/f", []byte("another writer's"))
	testwait.For(t, 3*listTTL, "another writer's version", func() bool {
		return string(openAndRead(t, b, "cat/f")) == "another writer's"
	})
}

func openAndRead(t *testing.T, b *Bucket, key string) []byte {
	t.Helper()
	if _, err := b.Stat(context.Background(), key); err != nil {
		t.Fatal(err)
	}
	r, err := b.Open(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	return readAll(t, r, 128<<10, nil)
}
