package vfs

import (
	"context"
	"sync"

	"github.com/sphere-sandbox/sphere/policy"
)

// Handle is an open secret. Every Read and Write asks policy again, for the
// caller of that request, so a role revoked while the file is open takes
// effect on the next read. Reads go to the store each time (the value is
// never kept for reading); writes fill a buffer of at most MaxSecretSize
// bytes that Flush commits. A Handle is safe for concurrent use.
type Handle struct {
	tree *Tree
	res  Resource // as it was at open: its ID and whether it is published

	mu     sync.Mutex
	buf    []byte // the value as this handle has written it; cap MaxSecretSize, so it never moves
	loaded bool   // buf holds the value (read from the store, or replaced)
	dirty  bool   // buf has changes Flush has not committed
}

var _ OpenFile = (*Handle)(nil)

// replace makes buf hold v. The buffer is allocated once at its largest so
// that growing never leaves a copy of the value behind in freed memory.
func (h *Handle) replace(v []byte) {
	if h.buf == nil {
		h.buf = make([]byte, 0, MaxSecretSize)
	}
	clear(h.buf)
	h.buf = append(h.buf[:0], v...)
	h.loaded = true
}

// setLen cuts buf, zeroing what it drops, or zero-pads it to n bytes (at
// most MaxSecretSize, which buf's capacity holds without moving).
func (h *Handle) setLen(n int64) {
	if n <= int64(len(h.buf)) {
		clear(h.buf[n:])
		h.buf = h.buf[:n]
		return
	}
	h.buf = append(h.buf, make([]byte, n-int64(len(h.buf)))...)
}

// load fills buf from the store the first time a write needs the current
// value (a write that does not start by replacing it).
func (h *Handle) load(ctx context.Context, p principal) error {
	if h.loaded {
		return nil
	}
	sctx, cancel := storeContext(ctx)
	defer cancel()
	v, err := h.tree.store.ReadSecret(sctx, p.id, h.res.ID)
	if err != nil {
		return err
	}
	defer clear(v)
	if len(v) > MaxSecretSize {
		return ErrTooLarge
	}
	h.replace(v)
	return nil
}

// pending returns the length of a value written but not committed yet.
func (h *Handle) pending() (int64, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return int64(len(h.buf)), h.dirty
}

// Read copies the value from off into dest, after asking policy for the
// caller of this read. A handle that has written reads its own uncommitted
// value.
func (h *Handle) Read(ctx context.Context, c Caller, dest []byte, off int64) (int, error) {
	t := h.tree
	p, err := t.authorize(c, t.onResource("read", h.res, policy.ActUseResource))
	if err != nil {
		return 0, err
	}
	h.mu.Lock()
	if h.dirty {
		defer h.mu.Unlock()
		return copyFrom(dest, h.buf, off), nil
	}
	h.mu.Unlock()
	sctx, cancel := storeContext(ctx)
	defer cancel()
	v, err := t.store.ReadSecret(sctx, p.id, h.res.ID)
	if err != nil {
		return 0, err
	}
	defer clear(v)
	return copyFrom(dest, v, off), nil
}

func copyFrom(dest, v []byte, off int64) int {
	if off >= int64(len(v)) {
		return 0
	}
	return copy(dest, v[off:])
}

// Write puts data at off in the handle's buffer, after asking policy for
// the caller of this write. A value that would grow past MaxSecretSize is
// refused (ErrTooLarge) and the buffer is left as it was.
func (h *Handle) Write(ctx context.Context, c Caller, data []byte, off int64) (int, error) {
	p, err := h.tree.authorizeEdit(c, "write", h.res)
	if err != nil {
		return 0, err
	}
	end := off + int64(len(data))
	if end > MaxSecretSize {
		return 0, ErrTooLarge
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.load(ctx, p); err != nil {
		return 0, err
	}
	if end > int64(len(h.buf)) {
		h.setLen(end)
	}
	copy(h.buf[off:], data)
	h.dirty = true
	return len(data), nil
}

// Truncate cuts or zero-pads the handle's value to size: ftruncate(2), and
// the kernel's way of opening with O_TRUNC.
func (h *Handle) Truncate(ctx context.Context, c Caller, size int64) error {
	p, err := h.tree.authorizeEdit(c, "truncate", h.res)
	if err != nil {
		return err
	}
	if size > MaxSecretSize {
		return ErrTooLarge
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if size == 0 {
		h.replace(nil) // replacing needs nothing of the old value
	} else if err := h.load(ctx, p); err != nil {
		return err
	}
	h.setLen(size)
	h.dirty = true
	return nil
}

// Flush commits what the handle has written, if anything, for the caller
// of the flush (close(2), fsync(2)). The commit is decided anew: edit-resource
// on the secret, or create-resource on the project if the secret was deleted
// since it was opened (the write brings it back). A commit is tried once: if
// it fails, the error goes to this close and the value written is dropped.
func (h *Handle) Flush(ctx context.Context, c Caller) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.dirty {
		return nil
	}
	h.dirty = false
	t := h.tree
	var (
		p   principal
		err error
	)
	if res, ok := t.store.Resource(t.project, KindSecret, h.res.Name); ok {
		p, err = t.authorizeEdit(c, "commit", res)
	} else {
		q := t.onProject("commit", Ref{Kind: KindSecret, Name: h.res.Name}.Path(), policy.ActCreateResource)
		q.audit = auditAll
		p, err = t.authorize(c, q)
	}
	if err != nil {
		return err
	}
	sctx, cancel := storeContext(ctx)
	defer cancel()
	return t.store.WriteSecret(sctx, p.id, t.project, h.res.Name, h.buf)
}

// Fsync commits like Flush.
func (h *Handle) Fsync(ctx context.Context, c Caller) error { return h.Flush(ctx, c) }

// Release forgets the handle's buffer, zeroing it. It commits nothing: the
// kernel sends RELEASE without the caller's credentials, after the FLUSH of
// the last close has committed whatever was written.
func (h *Handle) Release() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	clear(h.buf)
	h.buf, h.loaded, h.dirty = nil, false, false
	return nil
}

// Caching: a secret's value never enters the page cache.
func (h *Handle) Caching() Caching { return CacheNone }
