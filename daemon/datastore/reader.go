package datastore

import (
	"crypto/sha256"
	"fmt"
	"io"
	"sort"
	"sync"
)

// Reader reads one file. It is safe for concurrent use; concurrent ReadAts
// share the cache and in-flight fetches.
type Reader struct {
	s      *Store
	chunks []ChunkRef
	offs   []int64 // offs[i] is where chunks[i] starts; offs[len(chunks)] is the size
	size   int64
	err    error // a malformed chunk list, reported by every read

	mu     sync.Mutex
	closed bool
	next   int64 // where a read continuing the last one starts
	ahead  int   // chunks up to this index have been prefetched
}

// Open returns a Reader for the file made of chunks, size bytes long. It
// does no I/O; a malformed chunk list fails every ReadAt with
// ErrInvalidChunks.
func (s *Store) Open(chunks []ChunkRef, size int64) *Reader {
	offs, err := offsets(chunks, size)
	return &Reader{s: s, chunks: chunks, offs: offs, size: size, err: err}
}

// Size is the file's length.
func (r *Reader) Size() int64 { return r.size }

// ReadAt implements io.ReaderAt. Every byte it returns has been verified
// against its chunk's hash; a chunk that cannot be read ends the read with
// an error wrapping ErrMissing, ErrCorrupt or ErrUnavailable, and n counts
// only the bytes before it.
//
// A read that starts where the previous one ended (the first at offset 0
// included) is taken as sequential, and the next Options.Prefetch chunks
// are fetched in the background.
func (r *Reader) ReadAt(p []byte, off int64) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if off < 0 {
		return 0, fmt.Errorf("datastore: read at negative offset %d", off)
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return 0, ErrClosed
	}
	if off >= r.size {
		r.mu.Unlock()
		return 0, io.EOF
	}
	want := int(min(int64(len(p)), r.size-off))
	i := sort.Search(len(r.chunks), func(j int) bool { return r.offs[j+1] > off })
	if off == r.next {
		r.prefetchLocked(i)
	} else {
		r.ahead = i
	}
	r.next = off + int64(want)
	r.mu.Unlock()

	n := 0
	for ; n < want; i++ {
		c := r.chunks[i]
		cOff := off + int64(n) - r.offs[i]
		m := int(min(int64(want-n), c.Size-cOff))
		if err := r.s.readChunk(c, p[n:n+m], cOff); err != nil {
			return n, err
		}
		n += m
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// prefetchLocked starts fetching the chunks after chunk i, up to
// Options.Prefetch of them, skipping those already started. It stops at
// the first one there is no buffer for; the next read tries again.
func (r *Reader) prefetchLocked(i int) {
	last := min(i+r.s.opts.Prefetch, len(r.chunks)-1)
	for j := max(i, r.ahead) + 1; j <= last; j++ {
		if !r.s.prefetch(r.chunks[j]) {
			return
		}
		r.ahead = j
	}
}

// Close ends the Reader's use; ReadAt fails with ErrClosed afterwards.
// Prefetches it started finish in the background (and fill the cache).
func (r *Reader) Close() error {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	return nil
}

// readChunk fills dst from ref's chunk at off: from the cache with one
// pread when it is there, else from a (shared) fetch.
func (s *Store) readChunk(ref ChunkRef, dst []byte, off int64) error {
	key := chunkKey(ref.Hash)
	for {
		if e, verified := s.acquire(key); e != nil {
			if s.readCached(e, verified, ref, dst, off) {
				s.hits.Add(1)
				return nil
			}
			continue // dropped; fetch it
		}
		fl, err := s.fetch(ref, true)
		if err != nil {
			return err
		}
		if fl == nil {
			continue // cached meanwhile
		}
		s.misses.Add(1)
		err = fl.err
		if err == nil && int64(len(fl.data)) != ref.Size {
			// Joined a fetch for the same hash with another size: ref's
			// size is wrong for this content.
			err = fmt.Errorf("chunk %s: %w: it is %d bytes, not %d", ref.Hash, ErrCorrupt, len(fl.data), ref.Size)
		}
		if err == nil {
			copy(dst, fl.data[off:])
		}
		s.releaseFlight(fl)
		return err
	}
}

// readCached preads from a cache file acquire returned, and releases it.
// It reports false, having dropped the file, if the file proves wrong.
func (s *Store) readCached(e *entry, verified bool, ref ChunkRef, dst []byte, off int64) bool {
	defer s.release(e)
	if e.size != ref.Size {
		s.drop(e, fmt.Sprintf("cached chunk is %d bytes, chunk ref says %d", e.size, ref.Size))
		return false
	}
	if !verified {
		if err := s.verifyFile(e.f, []ChunkRef{ref}, []int64{0, ref.Size}); err != nil {
			s.drop(e, err.Error())
			return false
		}
		s.setVerified(e)
	}
	if n, err := e.f.ReadAt(dst, off); n < len(dst) {
		s.drop(e, fmt.Sprintf("short read (truncated?): %v", err))
		return false
	}
	return true
}

// verifyFile checks that f holds chunks at offs, reading one chunk at a
// time into a fetch buffer. It is how cache files that survived an unclean
// shutdown earn trust again.
func (s *Store) verifyFile(f io.ReaderAt, chunks []ChunkRef, offs []int64) error {
	select {
	case s.fetchSlots <- struct{}{}:
	case <-s.ctx.Done():
		return ErrClosed
	}
	defer func() { <-s.fetchSlots }()
	bp := s.bufs.Get().(*[]byte)
	defer s.bufs.Put(bp)
	for i, c := range chunks {
		var data []byte
		if c.Size <= int64(len(*bp)) {
			data = (*bp)[:c.Size]
		} else {
			data = make([]byte, c.Size)
		}
		if _, err := f.ReadAt(data, offs[i]); err != nil {
			return fmt.Errorf("chunk %d: %w", i, err)
		}
		if got := hashHex(sha256.Sum256(data)); got != c.Hash {
			return fmt.Errorf("chunk %d (%s) hashes to %s", i, c.Hash, got)
		}
	}
	return nil
}
