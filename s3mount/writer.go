package s3mount

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"slices"
	"sync"

	"github.com/minio/minio-go/v7"
)

// Upload geometry. A file is buffered in parts of partSize; each full part
// is uploaded in the background while the next one fills, with at most
// partsInFlight uploads at once, so a Writer holds at most
// MaxWriterBuffer bytes. A file that ends before its first part is full
// is stored with a single PUT at Close.
const (
	partSize      = 16 << 20
	partsInFlight = 3
	// MaxWriterBuffer bounds a Writer's buffers: the part being filled
	// and those being uploaded.
	MaxWriterBuffer = (partsInFlight + 1) * partSize
	// maxParts is S3's limit, which with fixed parts caps a file at
	// 156 GiB.
	maxParts = 10000
)

// Writer writes a new version of one object, sequentially. Nothing is
// visible in the bucket until Close succeeds; then the whole file is.
// Calls are serialized; use one Writer per open file handle.
type Writer struct {
	b   *Bucket
	key string

	ctx    context.Context // ends at Abort (or Bucket.Close): uploads run under it
	cancel context.CancelFunc

	mu       sync.Mutex // serializes Write, WriteAt, Close and Abort
	done     bool       // Close or Abort was called
	closeErr error      // what Close returned
	buf      []byte     // the part being filled
	size     int64
	nparts   int
	uploadID string      // set with the first full part
	free     chan []byte // part buffers back from upload
	nbufs    int         // part buffers allocated
	uploads  sync.WaitGroup

	partMu sync.Mutex // guards what uploads report
	parts  []minio.CompletePart
	err    error // the first failed upload
}

// Create starts writing the file at path, replacing any file there once
// closed. It fails with ErrReadOnly on a read-only bucket and ErrIsDir for
// a directory. The FUSE layer should itself show the file (size Size())
// while it is open, since S3 has nothing to list until Close.
func (b *Bucket) Create(ctx context.Context, path string) (*Writer, error) {
	if err := b.checkWrite("create", path); err != nil {
		return nil, err
	}
	switch e, err := b.Stat(ctx, path); {
	case err == nil && e.Dir:
		return nil, b.errorf("create", path, ErrIsDir, "")
	case err != nil && !errors.Is(err, ErrNotFound):
		return nil, err
	}
	w := &Writer{b: b, key: path, free: make(chan []byte, partsInFlight+1)}
	w.ctx, w.cancel = context.WithCancel(b.ctx)
	return w, nil
}

// Size is the number of bytes written so far.
func (w *Writer) Size() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.size
}

// Write appends p to the file. It blocks while partsInFlight parts are
// uploading, and fails (for good) once an upload has failed.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.write(p)
}

// WriteAt implements io.WriterAt for the only pattern S3 can stream: off
// must be the current end of the file. Anything else is ErrNotSupported.
func (w *Writer) WriteAt(p []byte, off int64) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if off != w.size {
		return 0, w.b.errorf("write", w.key, ErrNotSupported,
			"S3 files are written sequentially: write at %d, but the file has %d bytes", off, w.size)
	}
	return w.write(p)
}

func (w *Writer) write(p []byte) (int, error) {
	if w.done {
		return 0, w.b.errorf("write", w.key, ErrInvalid, "write after close")
	}
	if err := w.failed(); err != nil {
		return 0, err
	}
	written := 0
	for len(p) > 0 {
		if w.buf == nil {
			buf, err := w.nextBuf()
			if err != nil {
				return written, err
			}
			w.buf = buf
		}
		n := min(len(p), partSize-len(w.buf))
		w.buf = append(w.buf, p[:n]...)
		p, written, w.size = p[n:], written+n, w.size+int64(n)
		if len(w.buf) == partSize {
			if err := w.flush(); err != nil {
				return written, err
			}
		}
	}
	return written, nil
}

// nextBuf returns an empty part buffer, waiting for an upload to finish
// when all are in use. The first one grows as written, so small files do
// not pay for a whole part.
func (w *Writer) nextBuf() ([]byte, error) {
	select {
	case buf := <-w.free:
		return buf, nil
	default:
	}
	if w.nbufs < partsInFlight+1 {
		w.nbufs++
		if w.nbufs == 1 {
			return nil, nil
		}
		return make([]byte, 0, partSize), nil
	}
	select {
	case buf := <-w.free:
		return buf, nil
	case <-w.ctx.Done():
		return nil, cmpErr(w.failed(), w.b.errorf("write", w.key, ErrUnavailable, "the upload was stopped"))
	}
}

// flush starts uploading the part in w.buf.
func (w *Writer) flush() error {
	if w.nparts == maxParts {
		return w.b.errorf("write", w.key, ErrNotSupported, "file too large: S3 allows %d parts of %d MiB", maxParts, partSize>>20)
	}
	if w.uploadID == "" {
		ctx, cancel := w.b.opContext(w.ctx)
		defer cancel()
		id, err := w.b.s3.NewMultipartUpload(ctx, w.b.name, w.key, minio.PutObjectOptions{})
		if err != nil {
			return w.b.fail(ctx, "write", w.key, err, false)
		}
		w.uploadID = id
	}
	w.nparts++
	part, buf := w.nparts, w.buf
	w.buf = nil
	w.uploads.Add(1)
	go w.upload(part, buf)
	return nil
}

// upload sends one part, then hands its buffer back.
func (w *Writer) upload(part int, buf []byte) {
	defer w.uploads.Done()
	wd := w.b.watch(w.ctx)
	defer wd.stop()
	p, err := w.b.s3.PutObjectPart(wd.ctx, w.b.name, w.key, w.uploadID, part,
		newRewindable(bytes.NewReader(buf), wd), int64(len(buf)), minio.PutObjectPartOptions{})
	w.partMu.Lock()
	switch {
	case err == nil:
		w.parts = append(w.parts, minio.CompletePart{PartNumber: part, ETag: p.ETag})
	case w.err == nil:
		w.err = w.b.fail(wd.ctx, "write", w.key, err, false)
		w.cancel() // stop the other uploads: the file is lost anyway
	}
	w.partMu.Unlock()
	w.free <- buf[:0]
}

func (w *Writer) failed() error {
	w.partMu.Lock()
	defer w.partMu.Unlock()
	return w.err
}

// Close finishes the upload; on success the object is in the bucket. On
// failure the upload is aborted and the error says why; the file is then
// not in the bucket (an older version, if any, remains). Calling Close
// again returns the same result.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return w.closeErr
	}
	w.done = true
	w.closeErr = w.finish()
	if w.closeErr != nil {
		w.abort()
	}
	w.b.cache.invalidate(w.key)
	return w.closeErr
}

func (w *Writer) finish() error {
	if err := w.failed(); err != nil {
		return err
	}
	if w.uploadID == "" {
		wd := w.b.watch(w.ctx)
		defer wd.stop()
		_, err := w.b.s3.PutObject(wd.ctx, w.b.name, w.key, newRewindable(bytes.NewReader(w.buf), wd),
			int64(len(w.buf)), "", "", minio.PutObjectOptions{})
		if err != nil {
			return w.b.fail(wd.ctx, "write", w.key, err, false)
		}
		return nil
	}
	if len(w.buf) > 0 {
		if err := w.flush(); err != nil {
			return err
		}
	}
	w.uploads.Wait()
	if err := w.failed(); err != nil {
		return err
	}
	slices.SortFunc(w.parts, func(a, b minio.CompletePart) int { return cmp.Compare(a.PartNumber, b.PartNumber) })
	ctx, cancel := w.b.opContext(w.ctx)
	defer cancel()
	if _, err := w.b.s3.CompleteMultipartUpload(ctx, w.b.name, w.key, w.uploadID, w.parts, minio.PutObjectOptions{}); err != nil {
		return w.b.fail(ctx, "write", w.key, err, false)
	}
	return nil
}

// Abort gives the file up: nothing is stored, and parts already uploaded
// are deleted. After a successful Close it does nothing.
func (w *Writer) Abort() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return nil
	}
	w.done = true
	w.closeErr = w.b.errorf("write", w.key, ErrInvalid, "aborted")
	return w.abort()
}

// abort stops the uploads and deletes the parts. w.mu is held.
func (w *Writer) abort() error {
	w.cancel()
	w.uploads.Wait()
	w.buf = nil
	if w.uploadID == "" {
		return nil
	}
	// w.ctx has ended; the clean-up gets its own time.
	ctx, cancel := w.b.opContext(context.WithoutCancel(w.ctx))
	defer cancel()
	if err := w.b.s3.AbortMultipartUpload(ctx, w.b.name, w.key, w.uploadID); err != nil {
		return w.b.fail(ctx, "abort", w.key, err, false)
	}
	return nil
}
