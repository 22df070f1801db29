package s3mount

import (
	"context"
	"io"
	"time"
)

// watchdog is a context that ends when a transfer makes no progress for a
// whole timeout. Bounding the total time instead would fail large
// transfers on slow links; bounding nothing would let a stalled server
// hang a read forever, since a TCP connection to a frozen process stays
// open.
type watchdog struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	timer  *time.Timer
	limit  time.Duration
}

func (b *Bucket) watch(parent context.Context) *watchdog {
	ctx, cancel := context.WithCancelCause(parent)
	w := &watchdog{ctx: ctx, cancel: cancel, limit: b.timeout}
	cause := &timeoutError{endpoint: b.endpoint, what: "make progress", limit: b.timeout}
	w.timer = time.AfterFunc(b.timeout, func() { cancel(cause) })
	return w
}

// kick records progress.
func (w *watchdog) kick() { w.timer.Reset(w.limit) }

// stop releases the watchdog; its context ends.
func (w *watchdog) stop() {
	w.timer.Stop()
	w.cancel(context.Canceled)
}

// opContext bounds a single request/answer exchange with S3.
func (b *Bucket) opContext(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeoutCause(parent, b.timeout,
		&timeoutError{endpoint: b.endpoint, what: "answer", limit: b.timeout})
}

// progressReader kicks a watchdog on every read, so a body that keeps
// flowing never times out and one that stops does.
type progressReader struct {
	r io.Reader
	w *watchdog
}

func (p progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.w.kick()
	}
	return n, err
}

// rewindable is a progressReader over an upload body that keeps Seek,
// because minio-go retries a request only when it can rewind the body.
type rewindable struct {
	progressReader
	io.Seeker
}

func newRewindable(r io.ReadSeeker, w *watchdog) rewindable {
	return rewindable{progressReader{r, w}, r}
}
