package s3mount

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"
)

func TestWrite(t *testing.T) {
	s, b := setup(t, nil)
	ctx := context.Background()
	// Empty, small, one part exactly, multi-part with a short tail.
	for i, size := range []int{0, 1, 5 << 20, partSize, 40 << 20} {
		key := fmt.Sprintf("w/%d", size)
		data := randomBytes(uint64(100+i), size)
		w, err := b.Create(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		// Odd-sized writes, alternating Write and WriteAt at the end.
		for off, n := 0, 0; off < size; off += n {
			n = min(size-off, 1<<20+13)
			var err error
			if off%2 == 0 {
				_, err = w.Write(data[off : off+n])
			} else {
				_, err = w.WriteAt(data[off:off+n], int64(off))
			}
			if err != nil {
				t.Fatalf("%s: write at %d: %v", key, off, err)
			}
		}
		if w.Size() != int64(size) {
			t.Errorf("%s: Size() = %d", key, w.Size())
		}
		if err := w.Close(); err != nil {
			t.Fatalf("%s: Close: %v", key, err)
		}
		if got := get(t, s, key); sha256.Sum256(got) != sha256.Sum256(data) {
			t.Errorf("%s: read back %d bytes that differ from the %d written", key, len(got), size)
		}
		if err := w.Close(); err != nil {
			t.Errorf("%s: second Close = %v", key, err)
		}
		if _, err := w.Write([]byte("x")); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Write after Close = %v, want ErrInvalid", key, err)
		}
	}

	// An overwrite replaces the object whole, shorter or not.
	put(t, s, "over", randomBytes(5, 20<<20))
	w, err := b.Create(ctx, "over")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("short")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := get(t, s, "over"); string(got) != "short" {
		t.Errorf("overwrite: got %d bytes", len(got))
	}
}

func TestWriteRules(t *testing.T) {
	s, b := setup(t, nil)
	ctx := context.Background()
	put(t, s, "dir/x", nil)
	if _, err := b.Create(ctx, "dir"); !errors.Is(err, ErrIsDir) {
		t.Errorf("Create(dir) = %v, want ErrIsDir", err)
	}
	if _, err := b.Create(ctx, ""); !errors.Is(err, ErrInvalid) {
		t.Errorf("Create(root) = %v, want ErrInvalid", err)
	}

	w, err := b.Create(ctx, "seq")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("abc")); err != nil {
		t.Fatal(err)
	}
	for _, off := range []int64{0, 2, 4} {
		if _, err := w.WriteAt([]byte("z"), off); !errors.Is(err, ErrNotSupported) {
			t.Errorf("WriteAt(%d) with 3 bytes written = %v, want ErrNotSupported", off, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := get(t, s, "seq"); string(got) != "abc" {
		t.Errorf("seq = %q", got)
	}

	// Abort after parts went up: no object, no upload left behind.
	w, err = b.Create(ctx, "aborted")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(bytes.Repeat([]byte("x"), 2*partSize+1)); err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err == nil {
		t.Error("Close after Abort succeeded")
	}
	if _, err := b.Stat(ctx, "aborted"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Stat(aborted) = %v, want ErrNotFound", err)
	}
	for u := range s.Client().ListIncompleteUploads(ctx, testBucket, "", true) {
		t.Errorf("upload left behind: %+v", u)
	}
}
