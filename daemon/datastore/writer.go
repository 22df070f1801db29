package datastore

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math"
	"os"
	"sync"
)

// Writer cuts what is written to it into Options.ChunkSize chunks and
// uploads each, hashed, in the background while the next one fills. Its
// methods are not safe for concurrent use.
//
// Memory is bounded by the Store's upload slots (Options.MaxBuffers, shared
// by all Writers): a Writer waits in Write for a slot before filling a new
// chunk, so a fast producer cannot outrun the blob store by more than that.
type Writer struct {
	s      *Store
	ctx    context.Context
	cancel context.CancelFunc
	stop   func() bool // undoes the link from the Store's context
	wg     sync.WaitGroup

	buf   *[]byte // the chunk being filled, or nil between chunks
	n     int     // bytes in buf
	total int64
	done  bool // Close or Abort was called

	gen Generation

	mu   sync.Mutex
	refs []ChunkRef
	err  error // the first failed upload
}

// Generation is what a Writer needs to know of the blobs' generations
// (cluster/sweep.go): the one to write new blobs in, and which blobs files
// already name, which it names again rather than uploading.
type Generation struct {
	// Current is the sweep epoch the caller's state is in now.
	Current uint64
	// Referenced reports a generation in which a file names a blob of
	// hash, if any; nil means none is known.
	Referenced func(hash string) (gen uint64, ok bool)
}

// NewWriter starts a file. Uploads stop when ctx ends or the Store closes.
// The caller must Close or Abort the Writer.
func (s *Store) NewWriter(ctx context.Context, gen Generation) *Writer {
	ctx, cancel := context.WithCancel(ctx)
	return &Writer{s: s, ctx: ctx, cancel: cancel, stop: context.AfterFunc(s.ctx, cancel), gen: gen}
}

// Write implements io.Writer.
func (w *Writer) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		if err := w.ready(); err != nil {
			return written, err
		}
		c := copy((*w.buf)[w.n:], p)
		w.n += c
		w.total += int64(c)
		written += c
		p = p[c:]
		if w.n == len(*w.buf) {
			w.flush()
		}
	}
	return written, nil
}

// ReadFrom implements io.ReaderFrom, reading straight into chunk buffers.
func (w *Writer) ReadFrom(r io.Reader) (int64, error) {
	var total int64
	for {
		if err := w.ready(); err != nil {
			return total, err
		}
		c, err := r.Read((*w.buf)[w.n:])
		w.n += c
		w.total += int64(c)
		total += int64(c)
		if w.n == len(*w.buf) {
			w.flush()
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// ready makes sure there is a buffer to fill, failing if the Writer is
// finished or an upload has failed.
func (w *Writer) ready() error {
	if w.done {
		return ErrClosed
	}
	if err := w.failed(); err != nil {
		return err
	}
	if err := w.ctx.Err(); err != nil {
		return err
	}
	if w.buf != nil {
		return nil
	}
	select {
	case w.s.uploadSlots <- struct{}{}:
	case <-w.ctx.Done():
		return w.ctx.Err()
	}
	w.buf = w.s.bufs.Get().(*[]byte)
	return nil
}

func (w *Writer) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// flush hands the filled part of the buffer to an uploader, which frees
// the buffer and its slot when done.
func (w *Writer) flush() {
	w.mu.Lock()
	idx := len(w.refs)
	w.refs = append(w.refs, ChunkRef{})
	w.mu.Unlock()
	buf, data := w.buf, (*w.buf)[:w.n]
	w.buf, w.n = nil, 0
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		ref := ChunkRef{Hash: hashHex(sha256.Sum256(data)), Size: int64(len(data)), Gen: w.gen.Current}
		var err error
		if gen, ok := w.gen.referenced(ref.Hash); ok {
			ref.Gen = gen
		} else {
			ctx, cancel := context.WithTimeout(w.ctx, w.s.opts.Timeout)
			err = w.s.blobs.Put(ctx, ref.Key(), data)
			cancel()
		}
		w.s.bufs.Put(buf)
		<-w.s.uploadSlots
		w.mu.Lock()
		defer w.mu.Unlock()
		switch {
		case err != nil && w.err == nil:
			if w.ctx.Err() == nil {
				err = fmt.Errorf("datastore: upload chunk %s: %w: %w", ref.Hash, ErrUnavailable, err)
			} else {
				err = fmt.Errorf("datastore: upload chunk %s: %w", ref.Hash, context.Cause(w.ctx))
			}
			w.err = err
		case err == nil:
			w.refs[idx] = ref
		}
	}()
}

// Close uploads what is left, waits for all uploads and returns the file's
// chunk list and size. A file of 0 bytes has no chunks.
func (w *Writer) Close() ([]ChunkRef, int64, error) {
	if w.done {
		return nil, 0, ErrClosed
	}
	w.done = true
	if w.n > 0 {
		w.flush()
	} else {
		w.dropBuffer()
	}
	w.wg.Wait()
	w.stop()
	w.cancel()
	if err := w.failed(); err != nil {
		return nil, 0, err
	}
	return w.refs, w.total, nil
}

// Abort stops the uploads and discards the file. Chunks already uploaded
// stay in the blob store (they are content-addressed; unreferenced ones are
// garbage for a collector to find).
func (w *Writer) Abort() {
	if w.done {
		return
	}
	w.done = true
	w.cancel()
	w.stop()
	w.dropBuffer()
	w.wg.Wait()
}

func (w *Writer) dropBuffer() {
	if w.buf != nil {
		w.s.bufs.Put(w.buf)
		<-w.s.uploadSlots
		w.buf, w.n = nil, 0
	}
}

// WriteFile chunks and uploads the whole of f, from offset 0 whatever f's
// position, and returns its chunk list and size.
func (s *Store) WriteFile(ctx context.Context, f *os.File, gen Generation) ([]ChunkRef, int64, error) {
	w := s.NewWriter(ctx, gen)
	if _, err := w.ReadFrom(io.NewSectionReader(f, 0, math.MaxInt64)); err != nil {
		w.Abort()
		return nil, 0, fmt.Errorf("datastore: write file %s: %w", f.Name(), err)
	}
	return w.Close()
}

func (g Generation) referenced(hash string) (uint64, bool) {
	if g.Referenced == nil {
		return 0, false
	}
	return g.Referenced(hash)
}
