package vfs

import (
	"context"

	"github.com/sphere-sandbox/sphere/policy"
)

// images/NAME.json, nodes/NAME.json, aliases/NAME.json and
// dataproc-templates/NAME.json: one read-only file per resource, whose
// content is its descriptor (Resource.Descriptor).
//
// Who may do what: a descriptor holds no secret, and seeing a project's
// resources is what a viewer may do (SPEC §3), so listing, stat and reading
// all need view-resource: resolve decides it at every operation, and every
// read asks again. Nothing is ever written: every change is ErrReadOnly,
// whoever asks (chmod and chown, as everywhere, ErrNotPermitted).

// descriptorOpen opens a descriptor for reading.
func (t *Tree) descriptorOpen(c Caller, r Ref, m OpenMode) (OpenFile, error) {
	res, err := t.resolve(c, "open", r)
	if err != nil {
		return nil, err
	}
	if m.Write {
		return nil, ErrReadOnly
	}
	return &descriptorHandle{tree: t, res: res}, nil
}

// descriptorHandle is an open descriptor: its content as it was at open.
type descriptorHandle struct {
	tree *Tree
	res  Resource
}

var _ OpenFile = (*descriptorHandle)(nil)

func (h *descriptorHandle) Read(_ context.Context, c Caller, dest []byte, off int64) (int, error) {
	t := h.tree
	if _, err := t.authorize(c, t.onResource("read", h.res, policy.ActViewResource)); err != nil {
		return 0, err
	}
	return copyFrom(dest, h.res.Descriptor, off), nil
}

func (h *descriptorHandle) Write(context.Context, Caller, []byte, int64) (int, error) {
	return 0, ErrReadOnly
}

func (h *descriptorHandle) Truncate(context.Context, Caller, int64) error { return ErrReadOnly }
func (h *descriptorHandle) Flush(context.Context, Caller) error           { return nil }
func (h *descriptorHandle) Fsync(context.Context, Caller) error           { return nil }
func (h *descriptorHandle) Release() error                                { return nil }
func (h *descriptorHandle) pending() (int64, bool)                        { return 0, false }

// Caching: the pages read while open; a descriptor may change between opens.
func (h *descriptorHandle) Caching() Caching { return CacheOpen }
