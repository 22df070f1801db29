package s3mount

import (
	"context"
	"errors"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/minio/minio-go/v7"
)

// Readahead geometry. Sequential reads are served from chunks fetched by
// parallel ranged GETs; the window of chunks kept ahead of the reader
// starts at one and doubles with every chunk read in order, so a file read
// once from the start streams at full speed while a header peek costs
// little. A Reader never holds more than MaxReaderBuffer bytes, whatever
// the object's size.
const (
	chunkSize = 8 << 20
	maxAhead  = 4 // chunks fetched ahead of the one being read
	// headSize is fetched by Open itself, in the same GET that learns the
	// object's size and ETag: a small file costs a single request.
	headSize = 128 << 10
	// MaxReaderBuffer bounds a Reader's buffers: the head, the chunks
	// being read (a read can straddle two), the window ahead, and one
	// chunk behind for reads the kernel sends slightly out of order.
	MaxReaderBuffer = headSize + (maxAhead+3)*chunkSize
	// seqSlack is how far from the end of the previous read a read may
	// start and still count as sequential: the kernel sends a sequential
	// reader's requests (128 KiB each) several at a time, and they can
	// arrive out of order.
	seqSlack = 2 << 20
)

// chunkPool recycles full-size chunk buffers: at a GiB/s, allocating (and
// zeroing) a fresh 8 MiB buffer per chunk is measurable.
var chunkPool = sync.Pool{New: func() any { return new([chunkSize]byte) }}

// Reader reads one object as it was when opened (its ETag is pinned; if
// the object is replaced meanwhile, reads fail rather than mix versions).
// It is safe for concurrent use. Use one Reader per open file handle:
// sequential detection and readahead are per Reader.
type Reader struct {
	b     *Bucket
	key   string
	entry Entry

	ctx     context.Context // ends at Close; readahead runs under it
	stop    context.CancelFunc
	fetches sync.WaitGroup

	mu     sync.Mutex
	closed bool
	head   []byte           // bytes [0, len(head)) of the object
	chunks map[int64]*chunk // by index: chunk i holds [i*chunkSize, (i+1)*chunkSize)
	next   int64            // where the next read starts if reading is sequential
	cur    int64            // the chunk the last sequential read ended in
	ahead  int              // readahead window, in chunks
	held   int64            // bytes of chunk buffers not yet released
	freed  chan struct{}    // closed and replaced when held shrinks
}

type chunk struct {
	idx     int64
	buf     []byte
	pooled  *[chunkSize]byte // buf's backing array, when from chunkPool
	cancel  context.CancelFunc
	done    chan struct{} // closed when the fetch has ended and err is set
	err     error
	fetched bool // done is closed (guarded by Reader.mu, unlike done)
	refs    int  // ReadAt calls copying out of buf
	dropped bool // out of Reader.chunks; buf goes back once fetched && refs == 0
}

// Open opens the file at path for reading. Its first GET fetches the head
// of the object and learns its size and ETag; when a Stat has just done
// that, Open takes its answer and makes no request. It fails with ErrIsDir
// for a directory and ErrNotFound when there is nothing at path.
func (b *Bucket) Open(ctx context.Context, path string) (*Reader, error) {
	if err := b.checkPath("open", path); err != nil {
		return nil, err
	}
	if path == "" {
		return nil, b.errorf("open", path, ErrIsDir, "the bucket's root")
	}
	if h := b.cache.head(path); h != nil {
		return b.newReader(path, h.entry, h.data), nil
	}
	opCtx, cancel := b.opContext(ctx)
	defer cancel()
	entry, head, err := b.readHead(opCtx, "open", path)
	if err != nil {
		if !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		if isDir, derr := b.anyUnder(opCtx, "open", path+"/", false); derr != nil || !isDir {
			return nil, cmpErr(derr, err)
		}
		return nil, b.errorf("open", path, ErrIsDir, "")
	}
	return b.newReader(path, entry, head), nil
}

// newReader reads the object entry describes; head is its first bytes,
// which the Reader only reads (a cached head is shared).
func (b *Bucket) newReader(path string, entry Entry, head []byte) *Reader {
	r := &Reader{b: b, key: path, entry: entry, head: head, chunks: make(map[int64]*chunk), freed: make(chan struct{})}
	r.ctx, r.stop = context.WithCancel(b.ctx)
	return r
}

// cmpErr returns the first non-nil error.
func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// readHead GETs the first headSize bytes of key, for op.
func (b *Bucket) readHead(ctx context.Context, op, key string) (Entry, []byte, error) {
	var opts minio.GetObjectOptions
	_ = opts.SetRange(0, headSize-1) // cannot fail for these bounds
	body, info, hdr, err := b.s3.GetObject(ctx, b.name, key, opts)
	if err != nil {
		var er minio.ErrorResponse
		if errors.As(err, &er) && er.Code == "InvalidRange" {
			// No byte 0: the object is empty.
			info, err := b.s3.StatObject(ctx, b.name, key, minio.StatObjectOptions{})
			if err != nil {
				return Entry{}, nil, b.fail(ctx, op, key, err, false)
			}
			_, name := splitPath(key)
			return Entry{Name: name, Size: info.Size, ModTime: info.LastModified, ETag: info.ETag}, nil, nil
		}
		return Entry{}, nil, b.fail(ctx, op, key, err, false)
	}
	defer body.Close()
	size := info.Size // a server that ignored the range sent it all
	if cr := hdr.Get("Content-Range"); cr != "" {
		// "bytes 0-131071/1073741824"
		_, total, _ := strings.Cut(cr, "/")
		if size, err = strconv.ParseInt(total, 10, 64); err != nil {
			return Entry{}, nil, b.errorf(op, key, ErrUnavailable, "bad Content-Range %q in answer", cr)
		}
	}
	head := make([]byte, min(size, headSize))
	if _, err := io.ReadFull(body, head); err != nil {
		return Entry{}, nil, b.fail(ctx, op, key, err, false)
	}
	_, name := splitPath(key)
	return Entry{Name: name, Size: size, ModTime: info.LastModified, ETag: info.ETag}, head, nil
}

// Entry describes the object as it was when opened.
func (r *Reader) Entry() Entry { return r.entry }

// Buffered is how many bytes the Reader holds in buffers right now; it
// never exceeds MaxReaderBuffer.
func (r *Reader) Buffered() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.held + int64(len(r.head))
}

// ReadAt implements io.ReaderAt; see ReadAtContext.
func (r *Reader) ReadAt(p []byte, off int64) (int, error) {
	return r.ReadAtContext(context.Background(), p, off)
}

// ReadAtContext reads len(p) bytes at off, or up to the end of the object
// (then with io.EOF). A read that starts near where the reading got to,
// or falls in a chunk already fetched, is sequential: it is served from
// readahead chunks and extends the window. Any other read fetches exactly
// the bytes asked for. ctx cancels the wait (a FUSE interrupt), not a
// fetch other reads may share.
func (r *Reader) ReadAtContext(ctx context.Context, p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, r.b.errorf("read", r.key, ErrInvalid, "negative offset %d", off)
	}
	if off >= r.entry.Size {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	var eof error
	if rest := r.entry.Size - off; int64(len(p)) >= rest {
		p, eof = p[:rest], io.EOF
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return 0, r.b.errorf("read", r.key, ErrInvalid, "read after close")
	}
	if end := off + int64(len(p)); end <= int64(len(r.head)) {
		n := copy(p, r.head[off:end])
		r.next = end
		r.mu.Unlock()
		return n, eof
	}
	end := off + int64(len(p))
	first, last := off/chunkSize, (end-1)/chunkSize
	sequential := (off >= r.next-seqSlack && off <= r.next+seqSlack) || r.chunks[first] != nil
	if sequential {
		r.next = max(r.next, end)
	} else {
		r.next = end
	}
	if !sequential || last-first > 1 {
		// Random reads, and reads too large to gain from a buffer, go
		// straight into p.
		r.ahead = 0
		r.mu.Unlock()
		// Ends with the caller's ctx or at Close, whichever is first.
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		defer context.AfterFunc(r.ctx, cancel)()
		if err := r.b.readRange(ctx, r.key, r.entry.ETag, off, p); err != nil {
			return 0, err
		}
		return len(p), eof
	}
	cs, err := r.acquire(ctx, first, last)
	r.mu.Unlock()
	if err != nil {
		return 0, err
	}
	n, err := r.copyOut(ctx, cs, p, off)
	if err != nil {
		return n, err
	}
	return n, eof
}

// acquire returns the chunks first..last (one or two), fetching them if
// needed, with a reference held on each, and starts readahead beyond them.
// r.mu is held, but released while waiting for buffer space.
func (r *Reader) acquire(ctx context.Context, first, last int64) ([]*chunk, error) {
	if first > r.cur || r.ahead == 0 {
		r.ahead = min(max(1, 2*r.ahead), maxAhead)
		r.cur = first
	}
	lastChunk := (r.entry.Size - 1) / chunkSize
	// Out of the window: behind the one before first, or past the
	// readahead (left over from reading elsewhere).
	for i, c := range r.chunks {
		if i < first-1 || i > last+int64(r.ahead) {
			r.drop(c)
		}
	}
	for i := first; i <= last; i++ {
		for r.chunks[i] == nil {
			if r.held+r.chunkLen(i) <= MaxReaderBuffer-headSize {
				r.fetch(i)
				break
			}
			// Dropped chunks still being fetched or copied from hold
			// their memory; they let go promptly (their fetch was
			// cancelled).
			freed := r.freed
			r.mu.Unlock()
			select {
			case <-freed:
			case <-ctx.Done():
				r.mu.Lock()
				return nil, r.b.fail(ctx, "read", r.key, ctx.Err(), false)
			}
			r.mu.Lock()
			if r.closed {
				return nil, r.b.errorf("read", r.key, ErrInvalid, "read after close")
			}
		}
	}
	for i := last + 1; i <= min(last+int64(r.ahead), lastChunk); i++ {
		if r.chunks[i] == nil {
			if r.held+r.chunkLen(i) > MaxReaderBuffer-headSize {
				break
			}
			r.fetch(i)
		}
	}
	cs := make([]*chunk, 0, 2)
	for i := first; i <= last; i++ {
		c := r.chunks[i]
		c.refs++
		cs = append(cs, c)
	}
	return cs, nil
}

// copyOut waits for the chunks and copies [off, off+len(p)) out of them,
// then lets go of them.
func (r *Reader) copyOut(ctx context.Context, cs []*chunk, p []byte, off int64) (int, error) {
	var err error
	n := 0
	for _, c := range cs {
		if err == nil {
			select {
			case <-c.done:
				err = c.err
			case <-ctx.Done():
				err = r.b.fail(ctx, "read", r.key, ctx.Err(), false)
			case <-r.ctx.Done():
				err = r.b.errorf("read", r.key, ErrUnavailable, "closed while reading")
			}
		}
		if err == nil {
			start := c.idx * chunkSize
			from := max(off+int64(n)-start, 0)
			n += copy(p[n:], c.buf[from:])
		}
	}
	r.mu.Lock()
	for _, c := range cs {
		c.refs--
		// A failed chunk is forgotten, so the next read tries again.
		if c.fetched && c.err != nil && r.chunks[c.idx] == c {
			r.drop(c)
		}
		r.releaseIfIdle(c)
	}
	r.mu.Unlock()
	if err != nil {
		return 0, err
	}
	return n, nil
}

func (r *Reader) chunkLen(i int64) int64 { return min(chunkSize, r.entry.Size-i*chunkSize) }

// fetch starts fetching chunk i. r.mu is held.
func (r *Reader) fetch(i int64) {
	c := &chunk{idx: i, done: make(chan struct{})}
	if n := r.chunkLen(i); n == chunkSize {
		c.pooled = chunkPool.Get().(*[chunkSize]byte)
		c.buf = c.pooled[:]
	} else {
		c.buf = make([]byte, n)
	}
	r.held += int64(len(c.buf))
	ctx, cancel := context.WithCancel(r.ctx)
	c.cancel = cancel
	r.chunks[i] = c
	r.fetches.Add(1)
	go func() {
		defer r.fetches.Done()
		err := r.b.readRange(ctx, r.key, r.entry.ETag, i*chunkSize, c.buf)
		cancel()
		r.mu.Lock()
		defer r.mu.Unlock()
		c.err, c.fetched = err, true
		close(c.done)
		r.releaseIfIdle(c)
	}()
}

// drop takes c out of the cache; it goes away once nobody uses it.
// r.mu is held.
func (r *Reader) drop(c *chunk) {
	delete(r.chunks, c.idx)
	c.dropped = true
	r.releaseIfIdle(c)
}

// releaseIfIdle ends a dropped chunk nobody is waiting on: it cancels its
// fetch, and once that has ended, returns its buffer. r.mu is held.
func (r *Reader) releaseIfIdle(c *chunk) {
	if !c.dropped || c.refs > 0 {
		return
	}
	c.cancel()
	if !c.fetched || c.buf == nil {
		return
	}
	r.held -= int64(len(c.buf))
	if c.pooled != nil {
		chunkPool.Put(c.pooled)
	}
	c.buf, c.pooled = nil, nil
	r.wake()
}

// wake tells acquire calls waiting for buffer space to look again.
// r.mu is held.
func (r *Reader) wake() {
	close(r.freed)
	r.freed = make(chan struct{})
}

// Close stops readahead and waits for it to end. Reads after Close fail.
func (r *Reader) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.head = nil
	for _, c := range r.chunks {
		r.drop(c)
	}
	r.wake() // acquire calls waiting for space see closed
	r.mu.Unlock()
	r.stop()
	r.fetches.Wait()
	return nil
}

// readRange fills p with the bytes of key at off, from an object whose
// ETag must still be etag.
func (b *Bucket) readRange(ctx context.Context, key, etag string, off int64, p []byte) error {
	w := b.watch(ctx)
	defer w.stop()
	var opts minio.GetObjectOptions
	if err := opts.SetRange(off, off+int64(len(p))-1); err != nil {
		return b.errorf("read", key, ErrInvalid, "%v", err)
	}
	if etag != "" {
		_ = opts.SetMatchETag(etag) // fails only for ""
	}
	body, _, _, err := b.s3.GetObject(w.ctx, b.name, key, opts)
	if err != nil {
		var er minio.ErrorResponse
		if errors.As(err, &er) && er.Code == "PreconditionFailed" {
			err := b.errorf("read", key, ErrUnavailable, "the object was replaced since it was opened; open it again")
			b.log.Warn("s3 operation failed", "op", "read", "bucket", b.name, "key", key, "reason", "object replaced while open")
			return err
		}
		return b.fail(w.ctx, "read", key, err, false)
	}
	defer body.Close()
	if _, err := io.ReadFull(progressReader{body, w}, p); err != nil {
		return b.fail(w.ctx, "read", key, err, false)
	}
	return nil
}
