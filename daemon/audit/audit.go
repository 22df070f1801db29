// Package audit writes the daemon's access decisions as JSON lines, one
// record per line, to an append-only file.
//
// Records are produced on FUSE and API hot paths, so Record only queues: a
// single writer goroutine encodes and writes them, flushing as soon as the
// queue runs dry (so a record reaches the file within milliseconds) and
// fsyncing at most every SyncInterval. Close drains the queue, so every
// record accepted before Close is on disk when Close returns.
//
// Record has no field for a value: the log says who did what to which path
// and what was decided, never a secret's content (SPEC §7).
package audit

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Errors.
var (
	// ErrClosed is returned by a second Close.
	ErrClosed = errors.New("audit: log already closed")
)

// Decisions, as written in Record.Decision.
const (
	Allow = "allow"
	Deny  = "deny"
)

const (
	// queueSize is how many records may wait for the writer. At a few
	// hundred bytes each this is under a few MiB, and it absorbs bursts
	// like `ls -l` of a large directory without ever blocking.
	queueSize = 8192

	// maxBlock is the longest Record waits when the queue is full (the
	// disk is stalled or the writer cannot keep up). After that the
	// record is dropped and counted: an audit log must not be able to
	// hang every filesystem operation on the host.
	maxBlock = 50 * time.Millisecond

	// SyncInterval bounds how long a written record may sit in the page
	// cache before fsync, i.e. what a power loss can take.
	SyncInterval = 100 * time.Millisecond

	// droppedAction marks the synthetic record that reports lost ones.
	droppedAction = "audit.dropped"
)

// Record is one audited decision. Time is set to now when zero and is
// always written in UTC.
type Record struct {
	Time      time.Time `json:"time"`
	UID       uint32    `json:"uid"`
	Principal string    `json:"principal"`
	Action    string    `json:"action"`
	Path      string    `json:"path"`
	Decision  string    `json:"decision"`
	Binding   string    `json:"binding,omitempty"` // the binding that allowed it
	Missing   string    `json:"missing,omitempty"` // the role that was lacking
}

// Log is an audit log. The zero value and nil are not usable; a Log from
// Open("") discards everything. All methods are safe for concurrent use,
// and Record on a nil *Log is a no-op so optional auditing needs no checks.
type Log struct {
	// mu orders Record against Close: Record holds it shared while it
	// queues, Close exclusively while it shuts the queue, so no record
	// is ever sent on a closed channel or silently left behind.
	mu     sync.RWMutex
	closed bool

	queue   chan Record
	done    chan struct{} // closed when the writer has exited
	dropped atomic.Uint64

	f   *os.File
	err error // first write/sync error; read only after done
}

// Open opens (creating with mode 0600 if needed) the audit log at path for
// appending, and starts its writer. An empty path gives a Log that
// discards every record.
func Open(path string) (*Log, error) {
	if path == "" {
		return &Log{closed: true}, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("audit: create log directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: open log: %w", err)
	}
	// An existing file keeps its mode on open; the log names users and
	// paths, so tighten it rather than trust whoever created it.
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return nil, fmt.Errorf("audit: chmod log: %w", err)
	}
	l := &Log{
		queue: make(chan Record, queueSize),
		done:  make(chan struct{}),
		f:     f,
	}
	go l.run()
	return l, nil
}

// Record queues r for writing. It returns at once unless the queue is full,
// and then waits at most maxBlock before dropping r (the next record
// written reports how many were lost). After Close it does nothing.
func (l *Log) Record(r Record) {
	if l == nil {
		return
	}
	if r.Time.IsZero() {
		r.Time = time.Now()
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return
	}
	select {
	case l.queue <- r:
		return
	default:
	}
	t := time.NewTimer(maxBlock)
	defer t.Stop()
	select {
	case l.queue <- r:
	case <-t.C:
		l.dropped.Add(1)
	}
}

// Dropped returns how many records were lost because the queue was full.
func (l *Log) Dropped() uint64 {
	if l == nil {
		return 0
	}
	return l.dropped.Load()
}

// Close writes every queued record, syncs the file and closes it. It
// returns the first error the writer met, if any.
func (l *Log) Close() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		if l.f == nil { // the discarding log
			return nil
		}
		return ErrClosed
	}
	l.closed = true
	close(l.queue)
	l.mu.Unlock()

	<-l.done
	err := l.err
	if cerr := l.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("audit: close log: %w", cerr)
	}
	return err
}

// run is the writer goroutine. It batches whatever is queued into one
// write, flushes whenever the queue is empty, and fsyncs on a timer only
// when something was written since the last sync.
func (l *Log) run() {
	defer close(l.done)
	w := bufio.NewWriterSize(l.f, 64<<10)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // paths with & < > stay readable
	tick := time.NewTicker(SyncInterval)
	defer tick.Stop()
	dirty := false
	var reported uint64

	write := func(r Record) {
		r.Time = r.Time.UTC()
		// json.Encoder escapes control characters, so a path with a
		// newline in it still takes exactly one line.
		if err := enc.Encode(r); err != nil {
			l.fail(err)
		}
	}
	flush := func() {
		if n := l.dropped.Load(); n > reported {
			write(Record{
				Time:     time.Now(),
				Action:   droppedAction,
				Decision: "error",
				Missing:  strconv.FormatUint(n-reported, 10) + " records lost: audit queue full",
			})
			reported = n
		}
		if err := w.Flush(); err != nil {
			l.fail(err)
			// bufio.Writer errors are sticky; start afresh so
			// that later records can land once the disk recovers.
			w.Reset(l.f)
		}
		dirty = true
	}
	syncFile := func() {
		if dirty {
			if err := l.f.Sync(); err != nil {
				l.fail(err)
			}
			dirty = false
		}
	}

	for {
		select {
		case r, ok := <-l.queue:
			if !ok {
				flush()
				syncFile()
				return
			}
			write(r)
			// Take everything already queued, then flush once:
			// one write(2) per burst instead of per record.
		drain:
			for {
				select {
				case r, ok := <-l.queue:
					if !ok {
						break drain
					}
					write(r)
				default:
					break drain
				}
			}
			flush()
		case <-tick.C:
			syncFile()
		}
	}
}

// fail keeps the first error for Close. Writing goes on: a full disk may
// recover, and later records are still worth having.
func (l *Log) fail(err error) {
	if l.err == nil {
		l.err = fmt.Errorf("audit: write log: %w", err)
	}
}
