// Package testlog gives tests a logger whose output they can read: to
// check that a failure says why, and that a secret never appears.
package testlog

import (
	"bytes"
	"log/slog"
	"sync"
)

// Buffer collects what its Logger writes. It is safe for concurrent use:
// background work logs while the test reads.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String is everything logged so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Logger logs into b, as text.
func (b *Buffer) Logger() *slog.Logger { return slog.New(slog.NewTextHandler(b, nil)) }
