package datastore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// fileFlight is one materialization in progress; others wanting the same
// file wait for it.
type fileFlight struct {
	done chan struct{}
	err  error
}

// fileKey names a materialized file by its content: the SHA-256 of its
// chunk list, which fixes every byte and the size.
func fileKey(chunks []ChunkRef) string {
	h := sha256.New()
	line := make([]byte, 0, 96)
	for _, c := range chunks {
		line = append(line[:0], c.Hash...)
		line = append(line, ' ')
		line = strconv.AppendInt(line, c.Size, 10)
		line = append(line, '\n')
		h.Write(line)
	}
	name := hex.EncodeToString(h.Sum(nil))
	return filesDir + "/" + name[:2] + "/" + name
}

// LocalFile returns the whole file materialized in the cache dir, opened
// read-only: for FUSE passthrough of sealed, immutable files. Every chunk
// is verified on the way in. The file is cached under a key derived from
// its chunk list, so opening it again costs an open(2).
//
// The file counts against the cache bound. While any handle LocalFile
// returned for it is open (or the kernel holds one, as FUSE passthrough
// does), it is pinned: never evicted, and still counted. The pin is a
// shared flock(2) on the handle, so it needs no release call: closing the
// handle is enough. If the file cannot fit beside the pinned ones, the
// error wraps ErrCacheFull and callers should read through a Reader.
func (s *Store) LocalFile(ctx context.Context, chunks []ChunkRef, size int64) (*os.File, error) {
	offs, err := offsets(chunks, size)
	if err != nil {
		return nil, err
	}
	key := fileKey(chunks)
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, ErrClosed
		}
		if e := s.entries[key]; e != nil {
			f, err := s.openPinnedLocked(e)
			verified := e.verified
			s.mu.Unlock()
			if err != nil {
				s.drop(e, err.Error())
				continue
			}
			if !verified {
				if err := s.verifyFile(f, chunks, offs); err != nil {
					f.Close()
					s.drop(e, err.Error())
					continue
				}
				s.setVerified(e)
			}
			s.hits.Add(1)
			return f, nil
		}
		if ff := s.fileFlights[key]; ff != nil {
			s.mu.Unlock()
			select {
			case <-ff.done:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			// The other caller's own cancellation is no reason to fail ours.
			if ff.err != nil && !errors.Is(ff.err, context.Canceled) && !errors.Is(ff.err, context.DeadlineExceeded) {
				return nil, ff.err
			}
			continue
		}
		ff := &fileFlight{done: make(chan struct{})}
		s.fileFlights[key] = ff
		s.wg.Add(1)
		s.mu.Unlock()

		f, err := s.materialize(ctx, key, chunks, offs, size)
		s.mu.Lock()
		delete(s.fileFlights, key)
		s.mu.Unlock()
		ff.err = err
		close(ff.done)
		s.wg.Done()
		if err == nil {
			s.misses.Add(1)
		}
		return f, err
	}
}

// MaterializeLater builds the local copy LocalFile would return, in the
// background, when every chunk of the file is cached and no copy exists:
// the next LocalFile is then an open(2), not a copy of the whole file. It
// is for files just read through a Reader, whose next open would otherwise
// pay for the copy. One copy is built at a time; a file that finds the
// builder busy is copied at its next LocalFile instead, as before.
func (s *Store) MaterializeLater(chunks []ChunkRef, size int64) {
	if _, err := offsets(chunks, size); err != nil || !s.Cached(chunks) {
		return
	}
	key := fileKey(chunks)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.entries[key] != nil || s.fileFlights[key] != nil {
		return
	}
	select {
	case s.builder <- struct{}{}:
	default:
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() { <-s.builder }()
		f, err := s.LocalFile(s.ctx, chunks, size)
		if err != nil {
			if !errors.Is(err, ErrClosed) && !errors.Is(err, context.Canceled) {
				s.log.Info("datastore: local copy not built in the background", "size", size, "err", err)
			}
			return
		}
		f.Close()
	}()
}

// openPinnedLocked opens e's file read-only with the shared flock that pins
// it. Under s.mu no eviction holds the exclusive lock, so this never waits.
func (s *Store) openPinnedLocked(e *entry) (*os.File, error) {
	s.lru.MoveToFront(e.lru)
	f, err := os.Open(s.path(e.key))
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil && fi.Size() != e.size {
		err = fmt.Errorf("file is %d bytes, index says %d", fi.Size(), e.size)
	}
	if err == nil {
		err = flock(f, unix.LOCK_SH)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// materialize writes the file into tmp/ and renames it into the cache,
// having first reserved its full size: the bound holds while it is written.
func (s *Store) materialize(ctx context.Context, key string, chunks []ChunkRef, offs []int64, size int64) (*os.File, error) {
	cost := diskCost(size)
	s.mu.Lock()
	ok := s.reserveLocked(cost)
	used := s.used
	s.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("datastore: local file of %d bytes: %w (bound %d bytes, %d in use)", size, ErrCacheFull, s.opts.CacheBytes, used)
	}
	tmp, err := os.CreateTemp(filepath.Join(s.dir, tmpDir), "file-*")
	if err == nil {
		err = s.fill(ctx, tmp, chunks, offs)
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(tmp.Name(), s.path(key))
		}
		if err != nil {
			os.Remove(tmp.Name())
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.used -= cost
		return nil, err
	}
	e := &entry{key: key, file: true, size: size, cost: cost, verified: true}
	s.insertLocked(e)
	f, err := s.openPinnedLocked(e)
	if err != nil {
		s.removeLocked(e)
		return nil, err
	}
	return f, nil
}

// fill writes every chunk into f at its offset, with Options.Prefetch
// workers in parallel. Chunks come from the chunk cache when there, else
// from the blob store, verified; they are not added to the chunk cache,
// which would count the same bytes twice.
func (s *Store) fill(ctx context.Context, f *os.File, chunks []ChunkRef, offs []int64) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(s.ctx, func() { cancel(ErrClosed) })
	defer stop()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(max(s.opts.Prefetch, 1), len(chunks)) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= len(chunks) {
					return
				}
				if err := s.copyChunk(f, chunks[i], offs[i]); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return nil
}

// copyChunk writes ref's chunk into f at off.
func (s *Store) copyChunk(f *os.File, ref ChunkRef, off int64) error {
	if e, verified := s.acquire(chunkKey(ref.Hash)); e != nil {
		if done, err := s.copyCached(f, e, verified, ref, off); done {
			return err
		}
	}
	fl, err := s.fetch(ref, false)
	if err != nil {
		return err
	}
	defer s.releaseFlight(fl)
	if fl.err != nil {
		return fl.err
	}
	if int64(len(fl.data)) != ref.Size {
		return fmt.Errorf("chunk %s: %w: it is %d bytes, not %d", ref.Hash, ErrCorrupt, len(fl.data), ref.Size)
	}
	_, err = f.WriteAt(fl.data, off)
	return err
}

// copyCached copies a cached chunk into f at off and releases the entry.
// It reports false if the cache file proved wrong (and was dropped), so
// the chunk must be fetched.
func (s *Store) copyCached(f *os.File, e *entry, verified bool, ref ChunkRef, off int64) (bool, error) {
	defer s.release(e)
	if e.size != ref.Size {
		s.drop(e, fmt.Sprintf("cached chunk is %d bytes, chunk ref says %d", e.size, ref.Size))
		return false, nil
	}
	if verified {
		return s.copyFileRange(f, e, ref, off)
	}
	return s.copyThroughBuffer(f, e, verified, ref, off)
}

// copyThroughBuffer copies a cached chunk into f at off through a fetch
// buffer, hashing it on the way if it is not verified yet.
func (s *Store) copyThroughBuffer(f *os.File, e *entry, verified bool, ref ChunkRef, off int64) (bool, error) {
	select {
	case s.fetchSlots <- struct{}{}:
	case <-s.ctx.Done():
		return true, ErrClosed
	}
	defer func() { <-s.fetchSlots }()
	var data []byte
	if ref.Size <= int64(s.opts.ChunkSize) {
		bp := s.bufs.Get().(*[]byte)
		defer s.bufs.Put(bp)
		data = (*bp)[:ref.Size]
	} else {
		data = make([]byte, ref.Size)
	}
	if n, err := e.f.ReadAt(data, 0); n < len(data) {
		s.drop(e, fmt.Sprintf("short read (truncated?): %v", err))
		return false, nil
	}
	if !verified {
		if got := hashHex(sha256.Sum256(data)); got != ref.Hash {
			s.drop(e, fmt.Sprintf("content hashes to %s", got))
			return false, nil
		}
		s.setVerified(e)
	}
	_, err := f.WriteAt(data, off)
	return true, err
}

// copyFileRange copies a verified cached chunk into f at off inside the
// kernel (copy_file_range): one copy between page caches instead of a
// read into a buffer and a write out of it. A cache file found short is
// dropped (false); a file system that cannot copy this way has the chunk
// copied through a buffer.
func (s *Store) copyFileRange(f *os.File, e *entry, ref ChunkRef, off int64) (bool, error) {
	var from int64
	to := off
	for from < ref.Size {
		n, err := unix.CopyFileRange(int(e.f.Fd()), &from, int(f.Fd()), &to, int(ref.Size-from), 0)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EXDEV), errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.EINVAL):
			return s.copyThroughBuffer(f, e, true, ref, off)
		case err != nil:
			return true, err
		case n == 0:
			s.drop(e, fmt.Sprintf("short read at %d (truncated?)", from))
			return false, nil
		}
	}
	return true, nil
}

// Cached reports whether the file made of chunks can be had without the
// blob store: materialized by LocalFile already, or every chunk in the
// chunk cache. It does no I/O; the answer may be stale by the time it is
// acted on (an eviction), which costs only speed.
func (s *Store) Cached(chunks []ChunkRef) bool {
	for _, c := range chunks {
		if !validHash(c.Hash) {
			return false
		}
	}
	key := fileKey(chunks)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.entries[key] != nil {
		return true
	}
	for _, c := range chunks {
		if s.entries[chunkKey(c.Hash)] == nil {
			return false
		}
	}
	return true
}
