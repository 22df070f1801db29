package datastore

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync/atomic"
)

// flight is one fetch of a chunk from the blob store. Everyone who wants the
// chunk while it is in flight waits for the same one.
type flight struct {
	ref  ChunkRef
	done chan struct{} // closed when data or err is set
	data []byte        // the verified chunk, valid until the last release
	buf  *[]byte       // data's pooled backing, or nil
	err  error
	slot bool // holds a fetch slot, freed with the buffer
	// refs counts the fetcher and each waiter; the last one to let go
	// frees the buffer and its slot.
	refs atomic.Int32
}

// releaseFlight lets go of fl's data.
func (s *Store) releaseFlight(fl *flight) {
	if fl.refs.Add(-1) != 0 {
		return
	}
	if fl.buf != nil {
		s.bufs.Put(fl.buf)
	}
	if fl.slot {
		<-s.fetchSlots
	}
}

// fetch returns the finished fetch of ref, joining the one in flight or
// doing it in the calling goroutine. With admit, it returns nil if the
// chunk is cached by now (the caller looks again), and caches what it
// fetches. The caller must releaseFlight the result.
//
// Fetches run under the Store's context, not a caller's: others may be
// waiting for the same flight, and Options.Timeout bounds it anyway.
func (s *Store) fetch(ref ChunkRef, admit bool) (*flight, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	if admit && s.entries[chunkKey(ref.Hash)] != nil {
		s.mu.Unlock()
		return nil, nil
	}
	if fl := s.flights[ref.Hash]; fl != nil {
		fl.refs.Add(1)
		s.mu.Unlock()
		<-fl.done
		return fl, nil
	}
	fl := &flight{ref: ref, done: make(chan struct{})}
	fl.refs.Store(2) // the fetch below and the caller
	s.flights[ref.Hash] = fl
	s.wg.Add(1)
	s.mu.Unlock()
	select {
	case s.fetchSlots <- struct{}{}:
		fl.slot = true
		s.run(fl)
		// The caller has its bytes now; writing them to the cache need not
		// delay it.
		go func() {
			defer s.wg.Done()
			s.settle(fl, admit)
		}()
	case <-s.ctx.Done():
		fl.err = ErrClosed
		close(fl.done)
		s.settle(fl, false)
		s.wg.Done()
	}
	return fl, nil
}

// prefetch starts fetching ref in the background unless it is cached or in
// flight already. It reports false, doing nothing, when no buffer is free:
// read-ahead must never make memory grow or make demand reads wait.
func (s *Store) prefetch(ref ChunkRef) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	if s.entries[chunkKey(ref.Hash)] != nil || s.flights[ref.Hash] != nil {
		return true
	}
	select {
	case s.fetchSlots <- struct{}{}:
	default:
		return false
	}
	fl := &flight{ref: ref, done: make(chan struct{}), slot: true}
	fl.refs.Store(1)
	s.flights[ref.Hash] = fl
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.run(fl)
		s.settle(fl, true)
	}()
	return true
}

// run fetches and verifies fl's chunk and hands it (or the error) to
// everyone waiting. fl holds a fetch slot.
func (s *Store) run(fl *flight) {
	ref := fl.ref
	data, buf, err := s.get(ref)
	if err == nil {
		if got := hashHex(sha256.Sum256(data)); got != ref.Hash {
			err = fmt.Errorf("chunk %s: %w: content hashes to %s", ref.Hash, ErrCorrupt, got)
		}
	}
	if err != nil {
		s.logFailure(ref, err)
		if buf != nil {
			s.bufs.Put(buf)
		}
		data, buf = nil, nil
	}
	fl.data, fl.buf, fl.err = data, buf, err
	close(fl.done)
}

// settle caches a fetched chunk if admit, then retires its flight. Until
// then, readers who want the chunk join the finished flight and copy from
// its buffer: the chunk is never neither cached nor in flight, so it is
// never fetched twice in a row.
func (s *Store) settle(fl *flight, admit bool) {
	if admit && fl.err == nil {
		s.admit(fl.ref, fl.data)
	}
	s.mu.Lock()
	delete(s.flights, fl.ref.Hash)
	s.mu.Unlock()
	s.releaseFlight(fl)
}

// get reads ref's blob, into a pooled buffer when the blob store allows.
func (s *Store) get(ref ChunkRef) (data []byte, buf *[]byte, err error) {
	ctx, cancel := context.WithTimeout(s.ctx, s.opts.Timeout)
	defer cancel()
	if s.into != nil {
		if ref.Size <= int64(s.opts.ChunkSize) {
			buf = s.bufs.Get().(*[]byte)
			data = (*buf)[:ref.Size]
		} else {
			data = make([]byte, ref.Size)
		}
		err = s.into.getInto(ctx, ref.Key(), data)
	} else {
		data, err = s.blobs.Get(ctx, ref.Key())
		if err == nil && int64(len(data)) != ref.Size {
			err = fmt.Errorf("blob is %d bytes, want %d: %w", len(data), ref.Size, errSize)
		}
	}
	switch {
	case err == nil:
		return data, buf, nil
	case errors.Is(err, ErrMissing):
		err = fmt.Errorf("chunk %s: %w", ref.Hash, err)
	case errors.Is(err, errSize):
		err = fmt.Errorf("chunk %s: %w: %w", ref.Hash, ErrCorrupt, err)
	case s.ctx.Err() != nil:
		err = ErrClosed
	default:
		err = fmt.Errorf("chunk %s: %w: %w", ref.Hash, ErrUnavailable, err)
	}
	return data, buf, err
}

// logFailure says why a chunk could not be read: the reader only sees EIO.
func (s *Store) logFailure(ref ChunkRef, err error) {
	switch {
	case errors.Is(err, ErrMissing):
		s.log.Error("datastore: chunk missing from blob store", "hash", ref.Hash, "err", err)
	case errors.Is(err, ErrCorrupt):
		s.log.Error("datastore: chunk failed verification", "hash", ref.Hash, "err", err)
	case errors.Is(err, ErrClosed), errors.Is(err, context.Canceled):
	default:
		s.log.Warn("datastore: cannot fetch chunk", "hash", ref.Hash, "err", err)
	}
}
