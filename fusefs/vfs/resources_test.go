package vfs_test

import (
	"errors"
	"testing"

	"github.com/sphere-sandbox/sphere/fusefs/internal/fake"
	"github.com/sphere-sandbox/sphere/fusefs/vfs"
)

const nodeJSON = `{"name":"serve","spec":{"kind":"python"}}` + "\n"

// resourceFixture is newDataFixture with a node's descriptor (own), an
// image's (published) and a sealed model (own) holding weights.bin.
func resourceFixture(t *testing.T) *dataFixture {
	f := newDataFixture(t)
	f.store.Add(vfs.KindNode, "serve", false)
	f.store.SetDescriptor(vfs.KindNode, "serve", []byte(nodeJSON))
	f.store.Add(vfs.KindImage, "torch", true)
	f.store.SetDescriptor(vfs.KindImage, "torch", []byte(`{}`))
	model := f.store.Add(vfs.KindModel, "resnet", false)
	f.datasets.Put(model, "weights.bin", []byte("weights"))
	f.datasets.Seal(model)
	return f
}

// Descriptors are read-only files NAME.json that viewers may read; a
// model's files are a sealed dataset's, read-only even to developers.
func TestDescriptorsAndModels(t *testing.T) {
	nodes := vfs.Ref{Kind: vfs.KindNode}
	models := vfs.Ref{Kind: vfs.KindModel}
	node := vfs.Ref{Kind: vfs.KindNode, Name: "serve"}
	model := vfs.Ref{Kind: vfs.KindModel, Name: "resnet"}
	weights := file(vfs.KindModel, "resnet", "weights.bin")
	read := func(r vfs.Ref) func(*dataFixture, vfs.Caller) error {
		return func(f *dataFixture, c vfs.Caller) error {
			h, err := f.tree.Open(ctx, c, r, vfs.OpenMode{Read: true})
			if err != nil {
				return err
			}
			defer h.Release()
			buf := make([]byte, 100)
			_, err = h.Read(ctx, c, buf, 0)
			return err
		}
	}
	for _, tc := range []struct {
		name   string
		caller vfs.Caller
		op     func(*dataFixture, vfs.Caller) error
		want   error
	}{
		{"viewer looks up a descriptor", bob, func(f *dataFixture, c vfs.Caller) error {
			_, _, err := f.tree.Lookup(ctx, c, nodes, "serve.json")
			return err
		}, nil},
		{"a descriptor's name without .json", alice, func(f *dataFixture, c vfs.Caller) error {
			_, _, err := f.tree.Lookup(ctx, c, nodes, "serve")
			return err
		}, vfs.ErrNotFound},
		{"viewer reads a descriptor", bob, read(node), nil},
		{"the unregistered read a descriptor", anon, read(node), vfs.ErrNotFound},
		{"carol, who may not view it", carol, read(node), vfs.ErrNotFound},
		{"descriptor opened to write", alice, func(f *dataFixture, c vfs.Caller) error {
			_, err := f.tree.Open(ctx, c, node, vfs.OpenMode{Write: true, Truncate: true})
			return err
		}, vfs.ErrReadOnly},
		{"file created among descriptors", alice, func(f *dataFixture, c vfs.Caller) error {
			_, _, _, err := f.tree.Create(ctx, c, nodes, "new.json", vfs.OpenMode{Write: true})
			return err
		}, vfs.ErrReadOnly},
		{"descriptor removed", alice, func(f *dataFixture, c vfs.Caller) error { return f.tree.Unlink(ctx, c, nodes, "serve.json") }, vfs.ErrReadOnly},
		{"descriptor truncated", alice, func(f *dataFixture, c vfs.Caller) error {
			_, err := f.tree.Setattr(ctx, c, node, nil, vfs.SetAttr{SetSize: true})
			return err
		}, vfs.ErrReadOnly},
		{"descriptor chmod", alice, func(f *dataFixture, c vfs.Caller) error {
			_, err := f.tree.Setattr(ctx, c, node, nil, vfs.SetAttr{Mode: true})
			return err
		}, vfs.ErrNotPermitted},
		{"descriptor renamed", alice, func(f *dataFixture, c vfs.Caller) error {
			_, err := f.tree.Rename(ctx, c, nodes, "serve.json", nodes, "x.json", 0)
			return err
		}, vfs.ErrReadOnly},
		{"access W on a descriptor", alice, func(f *dataFixture, c vfs.Caller) error { return f.tree.Access(ctx, c, node, vfs.MayWrite) }, vfs.ErrReadOnly},
		{"access R on a descriptor by a viewer", bob, func(f *dataFixture, c vfs.Caller) error { return f.tree.Access(ctx, c, node, vfs.MayRead) }, nil},

		{"developer reads a model's file", alice, read(weights), nil},
		{"viewer reads a model's file", bob, read(weights), vfs.ErrDenied},
		{"developer writes a model's file", alice, func(f *dataFixture, c vfs.Caller) error {
			_, err := f.tree.Open(ctx, c, weights, vfs.OpenMode{Write: true, Truncate: true})
			return err
		}, vfs.ErrReadOnly},
		{"developer creates a model", alice, func(f *dataFixture, c vfs.Caller) error {
			_, _, err := f.tree.Mkdir(ctx, c, models, "new")
			return err
		}, vfs.ErrReadOnly},
		{"developer removes a model", alice, func(f *dataFixture, c vfs.Caller) error { return f.tree.Rmdir(ctx, c, models, "resnet") }, vfs.ErrReadOnly},
		{"developer creates in a model", alice, func(f *dataFixture, c vfs.Caller) error {
			_, _, _, err := f.tree.Create(ctx, c, model, "x", vfs.OpenMode{Write: true})
			return err
		}, vfs.ErrReadOnly},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := resourceFixture(t)
			if err := tc.op(f, tc.caller); !errors.Is(err, tc.want) || (err != nil) != (tc.want != nil) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}

	f := resourceFixture(t)
	es, err := f.tree.Readdir(ctx, bob, nodes)
	if err != nil || len(es) != 1 || es[0].Name != "serve.json" || es[0].Ref.IsDir() {
		t.Errorf("viewer lists nodes/: %+v %v", es, err)
	}
	if es, _ := f.tree.Readdir(ctx, alice, vfs.Ref{Kind: vfs.KindImage}); len(es) != 1 || es[0].Name != "torch.json" {
		t.Errorf("a published image is listed: %+v", es)
	}
	_, a, err := f.tree.Lookup(ctx, bob, nodes, "serve.json")
	if err != nil || a.Dir || a.Perm != 0o444 || a.Size != int64(len(nodeJSON)) {
		t.Errorf("descriptor attributes: %+v %v", a, err)
	}
	h, _ := f.tree.Open(ctx, bob, node, vfs.OpenMode{Read: true})
	buf := make([]byte, 100)
	if n, err := h.Read(ctx, bob, buf, 0); err != nil || string(buf[:n]) != nodeJSON {
		t.Errorf("descriptor content: %q %v", buf[:n], err)
	}
	// A revoked role fails the next read of an open descriptor.
	f.store.Revoke(102, fake.Viewer)
	if _, err := h.Read(ctx, bob, buf, 0); !errors.Is(err, vfs.ErrDenied) {
		t.Errorf("read after the viewer role was revoked: %v", err)
	}
	h.Release()
	if es, err := f.tree.Readdir(ctx, alice, models); err != nil || len(es) != 1 || es[0].Name != "resnet" || !es[0].Ref.IsDir() {
		t.Errorf("developer lists models/: %+v %v", es, err)
	}
	if es, err := f.tree.Readdir(ctx, alice, model); err != nil || len(es) != 1 || es[0].Name != "weights.bin" || es[0].Attr.Timeout == 0 {
		t.Errorf("a sealed model's files, kept like a sealed dataset's: %+v %v", es, err)
	}
}
