package datastore

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sphere-sandbox/sphere/internal/testlog"
	"github.com/sphere-sandbox/sphere/internal/testwait"
)

func TestRoundTrip(t *testing.T) {
	const chunk = DefaultChunkSize
	sizes := []struct {
		name string
		size int
	}{
		{"empty", 0},
		{"one byte", 1},
		{"chunk-1", chunk - 1},
		{"chunk", chunk},
		{"chunk+1", chunk + 1},
		{"3.5 chunks", chunk*3 + chunk/2},
		{"100 MiB", 100 << 20},
	}
	forEachBlobStore(t, func(t *testing.T, b *testBlobs) {
		s := newStore(t, b.Blobs, Options{CacheBytes: 256 << 20})
		for i, tc := range sizes {
			t.Run(tc.name, func(t *testing.T) {
				data := randomBytes(tc.size, uint64(i))
				var refs []ChunkRef
				if i%2 == 0 {
					refs = storeBytes(t, s, data)
				} else {
					refs = storeFile(t, s, data)
				}
				checkRefs(t, refs, data, chunk)

				r := s.Open(refs, int64(len(data)))
				got, err := readSeq(r, int64(len(data)), 1<<20)
				if err != nil {
					t.Fatalf("read: %v", err)
				}
				if sum(got) != sum(data) {
					t.Fatalf("read back %d bytes with another SHA-256", len(got))
				}
				r.Close()

				f, err := s.LocalFile(context.Background(), refs, int64(len(data)))
				if err != nil {
					t.Fatalf("LocalFile: %v", err)
				}
				defer f.Close()
				got, err = io.ReadAll(f)
				if err != nil {
					t.Fatal(err)
				}
				if sum(got) != sum(data) {
					t.Fatalf("LocalFile has %d bytes with another SHA-256", len(got))
				}
			})
		}
	})
}

// storeFile writes data through WriteFile, from a file whose position is
// not at its start.
func storeFile(t *testing.T, s *Store, data []byte) []ChunkRef {
	t.Helper()
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Seek(int64(len(data)/2), io.SeekStart)
	refs, size, err := s.WriteFile(context.Background(), f, Generation{})
	if err != nil {
		t.Fatal(err)
	}
	if size != int64(len(data)) {
		t.Fatalf("WriteFile size = %d, want %d", size, len(data))
	}
	return refs
}

// checkRefs checks that refs cut data into chunk-sized pieces and hash them.
func checkRefs(t *testing.T, refs []ChunkRef, data []byte, chunk int) {
	t.Helper()
	if want := (len(data) + chunk - 1) / chunk; len(refs) != want {
		t.Fatalf("%d chunks, want %d", len(refs), want)
	}
	for i, r := range refs {
		part := data[i*chunk : min(len(data), (i+1)*chunk)]
		if r.Size != int64(len(part)) || r.Hash != hashHex(sum(part)) {
			t.Fatalf("chunk %d = %+v, want size %d hash %s", i, r, len(part), hashHex(sum(part)))
		}
	}
}

func TestRandomReadAt(t *testing.T) {
	forEachBlobStore(t, func(t *testing.T, b *testBlobs) {
		const chunk = 64 << 10
		// A small cache, so reads mix hits, misses and evictions. b (not
		// b.Blobs) hides getInto: this is how a foreign Blobs is read.
		s := newStore(t, b, Options{ChunkSize: chunk, CacheBytes: 512 << 10})
		data := randomBytes(20*chunk+12345, 7)
		refs := storeBytes(t, s, data)
		r := s.Open(refs, int64(len(data)))
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(g), 1))
				for range 300 {
					off := rng.Int64N(int64(len(data)) + 1000)
					buf := make([]byte, rng.IntN(3*chunk))
					n, err := r.ReadAt(buf, off)
					wantN := max(0, min(len(buf), len(data)-int(off)))
					switch {
					case n != wantN:
						t.Errorf("ReadAt(%d bytes at %d) = %d bytes, want %d (err %v)", len(buf), off, n, wantN, err)
						return
					case n < len(buf) && err != io.EOF:
						t.Errorf("short ReadAt at %d: err = %v, want EOF", off, err)
						return
					case n == len(buf) && err != nil:
						t.Errorf("ReadAt at %d: %v", off, err)
						return
					case !bytes.Equal(buf[:n], data[min(int(off), len(data)):min(int(off), len(data))+n]):
						t.Errorf("ReadAt(%d bytes at %d): wrong bytes", len(buf), off)
						return
					}
				}
			})
		}
		wg.Wait()
		if st := s.CacheStats(); st.Used > st.Bound || st.Hits == 0 || st.Misses == 0 {
			t.Errorf("stats %+v: want hits and misses, used within bound", st)
		}
	})
}

func TestCorruptChunk(t *testing.T) {
	forEachBlobStore(t, func(t *testing.T, b *testBlobs) {
		const chunk = 64 << 10
		var logs testlog.Buffer
		s := newStore(t, b.Blobs, Options{ChunkSize: chunk, Logger: logs.Logger()})
		data := randomBytes(3*chunk+chunk/2, 3)
		refs := storeBytes(t, s, data)
		b.corrupt(t, refs[1].Hash)

		r := s.Open(refs, int64(len(data)))
		buf := make([]byte, len(data))
		n, err := r.ReadAt(buf, 0)
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("ReadAt over a corrupt chunk: err = %v, want ErrCorrupt", err)
		}
		if n != chunk || !bytes.Equal(buf[:n], data[:n]) {
			t.Fatalf("ReadAt returned %d bytes, want the %d good ones before the corrupt chunk", n, chunk)
		}
		// Again, inside the chunk: still refused, so it was not cached.
		if n, err := r.ReadAt(buf[:10], chunk+5); n != 0 || !errors.Is(err, ErrCorrupt) {
			t.Fatalf("second read: %d, %v; want 0, ErrCorrupt", n, err)
		}
		if _, err := os.Stat(s.path(chunkKey(refs[1].Hash))); !os.IsNotExist(err) {
			t.Errorf("corrupt chunk is in the cache (stat: %v)", err)
		}
		if _, err := s.LocalFile(context.Background(), refs, int64(len(data))); !errors.Is(err, ErrCorrupt) {
			t.Errorf("LocalFile: err = %v, want ErrCorrupt", err)
		}
		if st := s.CacheStats(); st.Files != 0 {
			t.Errorf("a file with a corrupt chunk was materialized: %+v", st)
		}
		if !strings.Contains(logs.String(), "failed verification") || !strings.Contains(logs.String(), refs[1].Hash) {
			t.Errorf("no log line names the corrupt chunk; log:\n%s", logs.String())
		}

		// A blob of the wrong length is corrupt too. (A new Store: the
		// first read prefetched, and so cached, the chunk.)
		b.remove(t, refs[2].Hash)
		if err := b.Put(context.Background(), refs[2].Hash, data[:100]); err != nil {
			t.Fatal(err)
		}
		s = newStore(t, b.Blobs, Options{ChunkSize: chunk, Logger: logs.Logger()})
		if _, err := s.Open(refs, int64(len(data))).ReadAt(buf[:10], 2*chunk); !errors.Is(err, ErrCorrupt) {
			t.Errorf("short blob: err = %v, want ErrCorrupt", err)
		}
	})
}

func TestMissingChunk(t *testing.T) {
	forEachBlobStore(t, func(t *testing.T, b *testBlobs) {
		const chunk = 64 << 10
		var logs testlog.Buffer
		s := newStore(t, b.Blobs, Options{ChunkSize: chunk, Logger: logs.Logger()})
		data := randomBytes(3*chunk, 4)
		refs := storeBytes(t, s, data)
		b.remove(t, refs[2].Hash)
		buf := make([]byte, len(data))
		n, err := s.Open(refs, int64(len(data))).ReadAt(buf, 0)
		if !errors.Is(err, ErrMissing) || n != 2*chunk {
			t.Fatalf("ReadAt = %d, %v; want %d, ErrMissing", n, err, 2*chunk)
		}
		if _, err := s.LocalFile(context.Background(), refs, int64(len(data))); !errors.Is(err, ErrMissing) {
			t.Errorf("LocalFile: err = %v, want ErrMissing", err)
		}
		if !strings.Contains(logs.String(), "missing") {
			t.Errorf("no log line for the missing chunk; log:\n%s", logs.String())
		}
	})
}

func TestCacheBound(t *testing.T) {
	const (
		chunk = 64 << 10
		bound = 1 << 20
	)
	forEachBlobStore(t, func(t *testing.T, b *testBlobs) {
		var files [][]byte
		var refs [][]ChunkRef
		w := newStore(t, b.Blobs, Options{ChunkSize: chunk})
		for i := range 6 { // 6 × 700 KiB: four times the bound
			files = append(files, randomBytes(700<<10, uint64(100+i)))
			refs = append(refs, storeBytes(t, w, files[i]))
		}

		for _, prefetch := range []int{-1, 4} {
			dir := t.TempDir()
			check := func(when string) {
				t.Helper()
				rounded, blocks := cacheDiskBytes(t, dir)
				if rounded > bound || blocks > bound {
					t.Errorf("prefetch %d, %s: cache takes %d bytes (%d in blocks), bound %d", prefetch, when, rounded, blocks, bound)
				}
			}
			cb := &countingBlobs{Blobs: b.Blobs}
			s := newStore(t, cb, Options{CacheDir: dir, ChunkSize: chunk, CacheBytes: bound, Prefetch: prefetch})
			// Check inside every fetch: that is while chunks are being
			// admitted and files materialized. Walking the directory is not
			// atomic; holding s.mu makes it so, as far as the bound goes:
			// no entry is evicted or reserved meanwhile, and files being
			// written stay within their reservations.
			cb.during = func() {
				s.mu.Lock()
				defer s.mu.Unlock()
				check("during a fetch")
			}
			checkNow := func(when string) {
				t.Helper()
				s.wg.Wait()
				if st := s.CacheStats(); st.Used > st.Bound || st.Bound != bound {
					t.Errorf("prefetch %d, %s: stats %+v over bound", prefetch, when, st)
				}
				check(when)
			}
			for round := range 2 {
				for i, data := range files {
					got, err := readSeq(s.Open(refs[i], int64(len(data))), int64(len(data)), 100_000)
					if err != nil || !bytes.Equal(got, data) {
						t.Fatalf("round %d file %d: read %d bytes, err %v", round, i, len(got), err)
					}
					checkNow("after a read")
					f, err := s.LocalFile(context.Background(), refs[i], int64(len(data)))
					if err != nil {
						t.Fatalf("LocalFile %d: %v", i, err)
					}
					got, err = io.ReadAll(f)
					f.Close()
					if err != nil || !bytes.Equal(got, data) {
						t.Fatalf("LocalFile %d: %d bytes, err %v", i, len(got), err)
					}
					checkNow("after LocalFile")
				}
			}

			// An open LocalFile pins its file: a second one cannot fit
			// beside it, reads still work in what is left, and closing
			// unpins.
			pinned, err := s.LocalFile(context.Background(), refs[0], int64(len(files[0])))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.LocalFile(context.Background(), refs[1], int64(len(files[1]))); !errors.Is(err, ErrCacheFull) {
				t.Fatalf("LocalFile beside a pinned file: err = %v, want ErrCacheFull", err)
			}
			for i, data := range files {
				if got, err := readSeq(s.Open(refs[i], int64(len(data))), int64(len(data)), 1<<20); err != nil || !bytes.Equal(got, data) {
					t.Fatalf("read %d while pinned: %v", i, err)
				}
			}
			checkNow("reads while pinned")
			if got, err := io.ReadAll(pinned); err != nil || !bytes.Equal(got, files[0]) {
				t.Fatalf("pinned file changed: %v", err)
			}
			pinned.Close()
			f, err := s.LocalFile(context.Background(), refs[1], int64(len(files[1])))
			if err != nil {
				t.Fatalf("LocalFile after unpinning: %v", err)
			}
			f.Close()
			checkNow("the end")
			if st := s.CacheStats(); st.Evictions == 0 {
				t.Errorf("no evictions under a workload 4× the bound: %+v", st)
			}
			big := randomBytes(bound+1, 9)
			if _, err := s.LocalFile(context.Background(), storeBytes(t, s, big), bound+1); !errors.Is(err, ErrCacheFull) {
				t.Errorf("LocalFile larger than the bound: err = %v, want ErrCacheFull", err)
			}
		}
	})
}

func TestRestartKeepsCache(t *testing.T) {
	const chunk = 64 << 10
	b := localTestBlobs(t)
	dir := t.TempDir()
	data := randomBytes(10*chunk+77, 5)

	s1, err := New(b, Options{CacheDir: dir, ChunkSize: chunk})
	if err != nil {
		t.Fatal(err)
	}
	refs := storeBytes(t, s1, data)
	if _, err := readSeq(s1.Open(refs, int64(len(data))), int64(len(data)), 1<<20); err != nil {
		t.Fatal(err)
	}
	f, err := s1.LocalFile(context.Background(), refs, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := New(b, Options{CacheDir: dir}); err == nil {
		t.Fatal("a second Store opened a cache dir in use")
	}
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}

	cb := &countingBlobs{Blobs: b.Blobs}
	s2 := newStore(t, cb, Options{CacheDir: dir, ChunkSize: chunk})
	if !s2.Cached(refs) || s2.Cached(append(refs[:len(refs):len(refs)], ChunkRef{Hash: hashHex(sum(nil)), Size: 1})) {
		t.Errorf("Cached: want true for the file, false with a chunk never seen")
	}
	got, err := readSeq(s2.Open(refs, int64(len(data))), int64(len(data)), 1<<20)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read after restart: %v", err)
	}
	f, err = s2.LocalFile(context.Background(), refs, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if st := s2.CacheStats(); cb.gets.Load() != 0 || st.Misses != 0 || st.Hits == 0 || st.Chunks != len(refs) || st.Files != 1 {
		t.Errorf("after restart: %d blob gets, stats %+v; want all hits", cb.gets.Load(), st)
	}
}

// A crash leaves the cache without its clean marker: the next Store hashes
// each cache file on first use instead of trusting it.
func TestUncleanRestartVerifiesCache(t *testing.T) {
	const chunk = 64 << 10
	b := localTestBlobs(t)
	dir := t.TempDir()
	data := randomBytes(4*chunk, 6)
	s1, err := New(b, Options{CacheDir: dir, ChunkSize: chunk})
	if err != nil {
		t.Fatal(err)
	}
	refs := storeBytes(t, s1, data)
	if _, err := readSeq(s1.Open(refs, int64(len(data))), int64(len(data)), 1<<20); err != nil {
		t.Fatal(err)
	}
	waitCached(t, s1, refs)
	f, err := s1.LocalFile(context.Background(), refs, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	s1.lock.Close() // crash: no Close, the kernel drops the lock

	// What a lost write-back looks like: right size, wrong bytes.
	for _, key := range []string{chunkKey(refs[2].Hash), fileKey(refs)} {
		p := filepath.Join(dir, key)
		cached, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		clear(cached[:100])
		if err := os.WriteFile(p, cached, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cb := &countingBlobs{Blobs: b.Blobs}
	s2 := newStore(t, cb, Options{CacheDir: dir, ChunkSize: chunk, Logger: (&testlog.Buffer{}).Logger()})
	got, err := readSeq(s2.Open(refs, int64(len(data))), int64(len(data)), 1<<20)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read after crash: %v, equal %v", err, bytes.Equal(got, data))
	}
	if n := cb.gets.Load(); n != 1 {
		t.Errorf("%d blob gets after crash, want 1 (the damaged chunk)", n)
	}
	f, err = s2.LocalFile(context.Background(), refs, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got, err := io.ReadAll(f); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("LocalFile after crash: %v, equal %v", err, bytes.Equal(got, data))
	}
}

func TestTruncatedCacheFile(t *testing.T) {
	const chunk = 64 << 10
	cb := &countingBlobs{Blobs: localTestBlobs(t).Blobs}
	s := newStore(t, cb, Options{ChunkSize: chunk, Logger: (&testlog.Buffer{}).Logger()})
	data := randomBytes(3*chunk, 8)
	refs := storeBytes(t, s, data)
	r := s.Open(refs, int64(len(data)))
	if _, err := readSeq(r, int64(len(data)), chunk); err != nil {
		t.Fatal(err)
	}
	waitCached(t, s, refs)
	before := cb.gets.Load()
	if err := os.Truncate(s.path(chunkKey(refs[1].Hash)), chunk/2); err != nil {
		t.Fatal(err)
	}
	got, err := readSeq(r, int64(len(data)), chunk)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read over a truncated cache file: %v, equal %v", err, bytes.Equal(got, data))
	}
	if n := cb.gets.Load() - before; n != 1 {
		t.Errorf("%d refetches, want 1", n)
	}

	// Materializing copies cached chunks inside the kernel; a short one
	// is refetched there too.
	waitCached(t, s, refs)
	before = cb.gets.Load()
	if err := os.Truncate(s.path(chunkKey(refs[2].Hash)), chunk/3); err != nil {
		t.Fatal(err)
	}
	f, err := s.LocalFile(context.Background(), refs, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got, err := io.ReadAll(f); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("local file over a truncated cache file: %v, equal %v", err, bytes.Equal(got, data))
	}
	if n := cb.gets.Load() - before; n != 1 {
		t.Errorf("materializing: %d refetches, want 1", n)
	}
}

// A file read whole through a Reader gets its local copy built in the
// background, from the cached chunks alone, so the next LocalFile finds
// it. A file not yet cached gets none.
func TestMaterializeLater(t *testing.T) {
	const chunk = 64 << 10
	cb := &countingBlobs{Blobs: localTestBlobs(t).Blobs}
	s := newStore(t, cb, Options{ChunkSize: chunk})
	data := randomBytes(5*chunk+17, 9)
	refs := storeBytes(t, s, data)

	s.MaterializeLater(refs, int64(len(data)))
	if st := s.CacheStats(); st.Files != 0 {
		t.Fatalf("a local copy was built from chunks not cached: %+v", st)
	}
	r := s.Open(refs, int64(len(data)))
	if _, err := readSeq(r, int64(len(data)), chunk); err != nil {
		t.Fatal(err)
	}
	r.Close()
	waitCached(t, s, refs)
	gets := cb.gets.Load()
	s.MaterializeLater(refs, int64(len(data)))
	testwait.For(t, 10*time.Second, "the local copy", func() bool { return s.CacheStats().Files == 1 })
	if n := cb.gets.Load() - gets; n != 0 {
		t.Errorf("building the local copy fetched %d chunks; they were all cached", n)
	}
	before := s.CacheStats()
	f, err := s.LocalFile(context.Background(), refs, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got, err := io.ReadAll(f); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("local copy: %v, equal %v", err, bytes.Equal(got, data))
	}
	if after := s.CacheStats(); after.Hits != before.Hits+1 || after.Misses != before.Misses || after.Files != 1 {
		t.Errorf("LocalFile after the background copy: %+v, then %+v; want one more hit and no copy", before, after)
	}
}

func TestConcurrentReaders(t *testing.T) {
	forEachBlobStore(t, func(t *testing.T, b *testBlobs) {
		const chunk = 256 << 10
		cb := &countingBlobs{Blobs: b.Blobs}
		s := newStore(t, cb, Options{ChunkSize: chunk, MaxBuffers: 6})
		data := randomBytes(40*chunk+1, 10)
		refs := storeBytes(t, s, data)
		shared := s.Open(refs, int64(len(data)))
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				r := shared
				if g%2 == 0 {
					r = s.Open(refs, int64(len(data)))
					defer r.Close()
				}
				got, err := readSeq(r, int64(len(data)), 1<<20-g)
				if err != nil || !bytes.Equal(got, data) {
					t.Errorf("reader %d: %v, equal %v", g, err, bytes.Equal(got, data))
				}
			})
		}
		for range 2 {
			wg.Go(func() {
				f, err := s.LocalFile(context.Background(), refs, int64(len(data)))
				if err != nil {
					t.Error(err)
					return
				}
				defer f.Close()
				if got, err := io.ReadAll(f); err != nil || !bytes.Equal(got, data) {
					t.Errorf("LocalFile: %v", err)
				}
			})
		}
		wg.Wait()
		// Each chunk was fetched once at most by the readers (they share
		// flights and the cache); LocalFile may fetch it once more where
		// it was not cached yet.
		if n := cb.gets.Load(); n < int64(len(refs)) || n > 2*int64(len(refs)) {
			t.Errorf("%d blob gets for %d chunks", n, len(refs))
		}
		if m := cb.maxInflight.Load(); m > 6 {
			t.Errorf("%d fetches at once, MaxBuffers is 6", m)
		}
	})
}

func TestSingleflight(t *testing.T) {
	const chunk = 64 << 10
	cb := &countingBlobs{Blobs: localTestBlobs(t).Blobs}
	s := newStore(t, cb, Options{ChunkSize: chunk, Prefetch: -1})
	data := randomBytes(8*chunk, 11)
	refs := storeBytes(t, s, data)
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			r := s.Open(refs, int64(len(data)))
			buf := make([]byte, 1000)
			for i := range refs {
				off := int64(i*chunk + g*17)
				if _, err := r.ReadAt(buf, off); err != nil || !bytes.Equal(buf, data[off:off+1000]) {
					t.Errorf("read at %d: %v", off, err)
				}
			}
		})
	}
	wg.Wait()
	if n := cb.gets.Load(); n != int64(len(refs)) {
		t.Errorf("%d blob gets for %d chunks read by 16 readers", n, len(refs))
	}
}

func TestInvalidChunks(t *testing.T) {
	s := newStore(t, localTestBlobs(t), Options{})
	good := hashHex(sum([]byte("x")))
	tests := []struct {
		name   string
		chunks []ChunkRef
		size   int64
	}{
		{"short hash", []ChunkRef{{Hash: "abc", Size: 1}}, 1},
		{"upper case", []ChunkRef{{Hash: strings.ToUpper(good), Size: 1}}, 1},
		{"path", []ChunkRef{{Hash: "../" + good[3:], Size: 1}}, 1},
		{"zero size", []ChunkRef{{Hash: good, Size: 0}}, 0},
		{"sizes too small", []ChunkRef{{Hash: good, Size: 1}}, 2},
		{"sizes too big", []ChunkRef{{Hash: good, Size: 1}, {Hash: good, Size: 1}}, 1},
		{"no chunks", nil, 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.Open(tc.chunks, tc.size).ReadAt(make([]byte, 1), 0); !errors.Is(err, ErrInvalidChunks) {
				t.Errorf("ReadAt: %v, want ErrInvalidChunks", err)
			}
			if _, err := s.LocalFile(context.Background(), tc.chunks, tc.size); !errors.Is(err, ErrInvalidChunks) {
				t.Errorf("LocalFile: %v, want ErrInvalidChunks", err)
			}
		})
	}
}

// failingBlobs fails every Put.
type failingBlobs struct{ Blobs }

func (failingBlobs) Put(context.Context, string, []byte) error { return errors.New("disk on fire") }

func TestWriter(t *testing.T) {
	t.Run("generation", func(t *testing.T) {
		b := localTestBlobs(t)
		s := newStore(t, b, Options{ChunkSize: MinChunkSize})
		data := randomBytes(5*MinChunkSize/2, 7)
		w := s.NewWriter(context.Background(), Generation{Current: 5})
		w.Write(data)
		refs, _, err := w.Close()
		if err != nil {
			t.Fatal(err)
		}
		keys := map[string]bool{}
		b.Blobs.(Sweeper).List(context.Background(), func(bi BlobInfo) error { keys[bi.Key] = true; return nil })
		for _, r := range refs {
			if r.Gen != 5 || !keys[r.Hash+"-5"] {
				t.Errorf("chunk %+v not stored as generation 5 (blobs %v)", r, keys)
			}
		}
		// Read back through an empty cache: from the blobs of generation 5.
		fresh := newStore(t, b, Options{ChunkSize: MinChunkSize})
		if got, err := readSeq(fresh.Open(refs, int64(len(data))), int64(len(data)), 1000); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read back: %v", err)
		}
	})
	t.Run("names what files hold", func(t *testing.T) {
		b := localTestBlobs(t)
		s := newStore(t, b, Options{ChunkSize: MinChunkSize})
		data := randomBytes(2*MinChunkSize, 8)
		held := hashHex(sum(data[:MinChunkSize]))
		w := s.NewWriter(context.Background(), Generation{Current: 5, Referenced: func(h string) (uint64, bool) { return 2, h == held }})
		w.Write(data)
		refs, _, err := w.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(refs) != 2 || refs[0].Hash != held || refs[0].Gen != 2 || refs[1].Gen != 5 {
			t.Fatalf("refs %+v: want the held chunk named in generation 2, the other written in 5", refs)
		}
		var stored []string
		b.Blobs.(Sweeper).List(context.Background(), func(bi BlobInfo) error { stored = append(stored, bi.Key); return nil })
		if len(stored) != 1 || stored[0] != refs[1].Key() {
			t.Errorf("stored %v: want only %s uploaded", stored, refs[1].Key())
		}
	})
	t.Run("upload failure", func(t *testing.T) {
		s := newStore(t, failingBlobs{localTestBlobs(t)}, Options{ChunkSize: MinChunkSize})
		w := s.NewWriter(context.Background(), Generation{})
		w.Write(make([]byte, 10*MinChunkSize))
		if _, _, err := w.Close(); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "disk on fire") {
			t.Errorf("Close: %v, want ErrUnavailable with the cause", err)
		}
	})
	t.Run("after close", func(t *testing.T) {
		s := newStore(t, localTestBlobs(t), Options{})
		w := s.NewWriter(context.Background(), Generation{})
		if refs, n, err := w.Close(); err != nil || len(refs) != 0 || n != 0 {
			t.Fatalf("empty Close = %v, %d, %v", refs, n, err)
		}
		if _, err := w.Write([]byte("x")); !errors.Is(err, ErrClosed) {
			t.Errorf("Write after Close: %v", err)
		}
		if _, _, err := w.Close(); !errors.Is(err, ErrClosed) {
			t.Errorf("second Close: %v", err)
		}
	})
	t.Run("abort frees buffers", func(t *testing.T) {
		s := newStore(t, localTestBlobs(t), Options{ChunkSize: MinChunkSize, MaxBuffers: 2})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// Were a buffer leaked per aborted writer, the third would wait
		// for one until ctx ended.
		for range 5 {
			w := s.NewWriter(ctx, Generation{})
			if _, err := w.Write(make([]byte, MinChunkSize+1)); err != nil {
				t.Fatal(err)
			}
			w.Abort()
		}
	})
	t.Run("canceled", func(t *testing.T) {
		s := newStore(t, localTestBlobs(t), Options{})
		ctx, cancel := context.WithCancel(context.Background())
		w := s.NewWriter(ctx, Generation{})
		cancel()
		if _, err := w.Write([]byte("x")); !errors.Is(err, context.Canceled) {
			t.Errorf("Write after cancel: %v", err)
		}
		w.Abort()
	})
}

func TestClosedStore(t *testing.T) {
	b := localTestBlobs(t)
	s, err := New(b, Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	refs := storeBytes(t, s, []byte("hello"))
	r := s.Open(refs, 5)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadAt(make([]byte, 5), 0); !errors.Is(err, ErrClosed) {
		t.Errorf("ReadAt after Store.Close: %v", err)
	}
	if _, err := s.LocalFile(context.Background(), refs, 5); !errors.Is(err, ErrClosed) {
		t.Errorf("LocalFile after Store.Close: %v", err)
	}
}

func TestNewOptions(t *testing.T) {
	b := localTestBlobs(t)
	for _, o := range []Options{
		{},
		{CacheDir: t.TempDir(), CacheBytes: -1},
		{CacheDir: t.TempDir(), ChunkSize: 100},
		{CacheDir: t.TempDir(), ChunkSize: MaxChunkSize + 1},
	} {
		if _, err := New(b, o); err == nil {
			t.Errorf("New(%+v) succeeded", o)
		}
	}
}
