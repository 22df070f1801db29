package vfs_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/sphere-sandbox/sphere/fusefs/internal/fake"
	"github.com/sphere-sandbox/sphere/fusefs/vfs"
	"github.com/sphere-sandbox/sphere/policy"
)

const project policy.ID = 500

// The callers of the fixture.
var (
	alice = vfs.Caller{UID: 1001, GID: 1001} // developer
	bob   = vfs.Caller{UID: 1002, GID: 1002} // viewer
	anon  = vfs.Caller{UID: 1003, GID: 1003} // not registered
	carol = vfs.Caller{UID: 1004, GID: 1004} // may view the project and only the secret TOKEN
)

const tokenValue = "s3cr3t-value"

type fixture struct {
	store *fake.Store
	audit *fake.Auditor
	tree  *vfs.Tree
	token policy.ID // secrets/TOKEN
}

// newFixture: secrets TOKEN (own), SHARED (published), HIDDEN (own, which
// carol may not see); datasets cats (own), dogs (published); connector bucket.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	s := fake.NewStore(project)
	s.AddUser(alice.UID, 101, "alice")
	s.AddUser(bob.UID, 102, "bob")
	s.AddUser(carol.UID, 104, "carol")
	s.Grant(101, fake.Developer)
	s.Grant(102, fake.Viewer)
	f := &fixture{store: s, audit: &fake.Auditor{}}
	f.token = s.SetSecret("TOKEN", tokenValue, false)
	s.SetSecret("SHARED", "published-value", true)
	s.SetSecret("HIDDEN", "hidden-value", false)
	s.Add(vfs.KindDataset, "cats", false)
	s.Add(vfs.KindDataset, "dogs", true)
	s.Add(vfs.KindS3, "bucket", false)
	s.Allow(104, policy.ActViewProject, policy.Target{ID: project})
	s.Allow(104, policy.ActViewResource, policy.Target{ID: f.token})
	f.tree = vfs.New(s, f.audit, project, "acme/cats/p1")
	return f
}

var (
	secrets  = vfs.Ref{Kind: vfs.KindSecret}
	datasets = vfs.Ref{Kind: vfs.KindDataset}
	s3dir    = vfs.Ref{Kind: vfs.KindS3}
)

func secret(name string) vfs.Ref  { return vfs.Ref{Kind: vfs.KindSecret, Name: name} }
func dataset(name string) vfs.Ref { return vfs.Ref{Kind: vfs.KindDataset, Name: name} }

var ctx = context.Background()

// TestCheckpoint runs each operation as each kind of caller against a fresh
// fixture and checks what the checkpoint let through.
func TestCheckpoint(t *testing.T) {
	readOnly := vfs.OpenMode{Read: true}
	writeOnly := vfs.OpenMode{Write: true}
	open := func(r vfs.Ref, m vfs.OpenMode) func(*vfs.Tree, vfs.Caller) error {
		return func(tr *vfs.Tree, c vfs.Caller) error { _, err := tr.Open(ctx, c, r, m); return err }
	}
	lookup := func(dir vfs.Ref, name string) func(*vfs.Tree, vfs.Caller) error {
		return func(tr *vfs.Tree, c vfs.Caller) error { _, _, err := tr.Lookup(ctx, c, dir, name); return err }
	}
	readdir := func(dir vfs.Ref) func(*vfs.Tree, vfs.Caller) error {
		return func(tr *vfs.Tree, c vfs.Caller) error { _, err := tr.Readdir(ctx, c, dir); return err }
	}
	create := func(name string) func(*vfs.Tree, vfs.Caller) error {
		return func(tr *vfs.Tree, c vfs.Caller) error {
			_, _, _, err := tr.Create(ctx, c, secrets, name, writeOnly)
			return err
		}
	}
	mkdir := func(dir vfs.Ref, name string) func(*vfs.Tree, vfs.Caller) error {
		return func(tr *vfs.Tree, c vfs.Caller) error { _, _, err := tr.Mkdir(ctx, c, dir, name); return err }
	}
	unlink := func(name string) func(*vfs.Tree, vfs.Caller) error {
		return func(tr *vfs.Tree, c vfs.Caller) error { return tr.Unlink(ctx, c, secrets, name) }
	}
	rmdir := func(dir vfs.Ref, name string) func(*vfs.Tree, vfs.Caller) error {
		return func(tr *vfs.Tree, c vfs.Caller) error { return tr.Rmdir(ctx, c, dir, name) }
	}
	setattr := func(r vfs.Ref, s vfs.SetAttr) func(*vfs.Tree, vfs.Caller) error {
		return func(tr *vfs.Tree, c vfs.Caller) error { _, err := tr.Setattr(ctx, c, r, nil, s); return err }
	}
	access := func(r vfs.Ref, mask uint32) func(*vfs.Tree, vfs.Caller) error {
		return func(tr *vfs.Tree, c vfs.Caller) error { return tr.Access(ctx, c, r, mask) }
	}

	for _, tc := range []struct {
		name   string
		caller vfs.Caller
		op     func(*vfs.Tree, vfs.Caller) error
		want   error
	}{
		{"root listed by a developer", alice, readdir(vfs.Root), nil},
		{"root listed by a viewer", bob, readdir(vfs.Root), nil},
		{"root listed by the unregistered", anon, readdir(vfs.Root), vfs.ErrDenied},
		{"root looked into by the unregistered", anon, lookup(vfs.Root, "secrets"), vfs.ErrDenied},
		{"no other directory at the root", alice, lookup(vfs.Root, "notebooks"), vfs.ErrNotFound},
		{"secrets/ listed by a viewer", bob, readdir(secrets), nil},
		{"secrets/ listed by the unregistered", anon, readdir(secrets), vfs.ErrDenied},
		{"secret looked up by a viewer", bob, lookup(secrets, "TOKEN"), nil},
		{"secret not visible to carol looks absent", carol, lookup(secrets, "HIDDEN"), vfs.ErrNotFound},
		{"missing secret", alice, lookup(secrets, "NOPE"), vfs.ErrNotFound},

		{"developer opens a secret", alice, open(secret("TOKEN"), readOnly), nil},
		{"viewer opens a secret", bob, open(secret("TOKEN"), readOnly), vfs.ErrDenied},
		{"carol opens the secret she sees", carol, open(secret("TOKEN"), readOnly), vfs.ErrDenied},
		{"carol opens the secret she does not see", carol, open(secret("HIDDEN"), readOnly), vfs.ErrNotFound},
		{"developer opens a secret to write", alice, open(secret("TOKEN"), writeOnly), nil},
		{"viewer opens a secret to write", bob, open(secret("TOKEN"), writeOnly), vfs.ErrDenied},
		{"published secret opened to write", alice, open(secret("SHARED"), writeOnly), vfs.ErrReadOnly},
		{"published secret opened to read", alice, open(secret("SHARED"), readOnly), nil},
		{"a directory is not opened", alice, open(secrets, readOnly), vfs.ErrNotSupported},

		{"developer creates a secret", alice, create("NEW_ONE"), nil},
		{"viewer creates a secret", bob, create("NEW_ONE"), vfs.ErrDenied},
		{"secret name starting with a digit", alice, create("1ABC"), vfs.ErrInvalidName},
		{"secret name with a dot", alice, create("a.b"), vfs.ErrInvalidName},
		{"secret name too long", alice, create(strings.Repeat("A", 64)), vfs.ErrInvalidName},
		{"secret that exists", alice, create("TOKEN"), vfs.ErrExists},
		{"secret that exists but carol may not see", carol, create("HIDDEN"), vfs.ErrDenied},
		{"file at the root", alice, func(tr *vfs.Tree, c vfs.Caller) error {
			_, _, _, err := tr.Create(ctx, c, vfs.Root, "x", writeOnly)
			return err
		}, vfs.ErrNotPermitted},
		{"file in datasets/", alice, func(tr *vfs.Tree, c vfs.Caller) error {
			_, _, _, err := tr.Create(ctx, c, datasets, "x", writeOnly)
			return err
		}, vfs.ErrNotPermitted},

		{"developer deletes a secret", alice, unlink("TOKEN"), nil},
		{"viewer deletes a secret", bob, unlink("TOKEN"), vfs.ErrDenied},
		{"published secret deleted", alice, unlink("SHARED"), vfs.ErrReadOnly},
		{"missing secret deleted", alice, unlink("NOPE"), vfs.ErrNotFound},

		{"developer creates a dataset", alice, mkdir(datasets, "birds"), nil},
		{"viewer creates a dataset", bob, mkdir(datasets, "birds"), vfs.ErrDenied},
		{"dataset name with capitals", alice, mkdir(datasets, "Birds"), vfs.ErrInvalidName},
		{"dataset that exists", alice, mkdir(datasets, "cats"), vfs.ErrExists},
		{"directory in secrets/", alice, mkdir(secrets, "dir"), vfs.ErrNotPermitted},
		{"directory in s3/", alice, mkdir(s3dir, "other"), vfs.ErrNotPermitted},
		{"directory at the root", alice, mkdir(vfs.Root, "notebooks"), vfs.ErrNotPermitted},
		{"directory in a published dataset", alice, mkdir(dataset("dogs"), "x"), vfs.ErrReadOnly},
		{"developer deletes a dataset", alice, rmdir(datasets, "cats"), nil},
		{"viewer deletes a dataset", bob, rmdir(datasets, "cats"), vfs.ErrDenied},
		{"published dataset deleted", alice, rmdir(datasets, "dogs"), vfs.ErrReadOnly},
		{"connector directory removed", alice, rmdir(s3dir, "bucket"), vfs.ErrNotPermitted},
		{"fixed directory removed", alice, rmdir(vfs.Root, "secrets"), vfs.ErrNotPermitted},

		{"dataset listed by a developer", alice, readdir(dataset("cats")), nil},
		{"dataset listed by a viewer", bob, readdir(dataset("cats")), nil},
		{"dataset listed by carol, who may not view it", carol, readdir(dataset("cats")), vfs.ErrNotFound},

		{"rename", alice, func(tr *vfs.Tree, c vfs.Caller) error {
			_, err := tr.Rename(ctx, c, secrets, "TOKEN", secrets, "OTHER", 0)
			return err
		}, vfs.ErrCrossDevice},
		{"rename of what carol may not see", carol, func(tr *vfs.Tree, c vfs.Caller) error {
			_, err := tr.Rename(ctx, c, secrets, "HIDDEN", secrets, "OTHER", 0)
			return err
		}, vfs.ErrNotFound},
		{"rename of a fixed directory", alice, func(tr *vfs.Tree, c vfs.Caller) error {
			_, err := tr.Rename(ctx, c, vfs.Root, "secrets", vfs.Root, "keys", 0)
			return err
		}, vfs.ErrNotPermitted},
		{"link", alice, func(tr *vfs.Tree, c vfs.Caller) error { return tr.MakeNode(c, secrets) }, vfs.ErrNotPermitted},
		{"link by the unregistered", anon, func(tr *vfs.Tree, c vfs.Caller) error { return tr.MakeNode(c, secrets) }, vfs.ErrDenied},
		{"xattr", alice, func(tr *vfs.Tree, c vfs.Caller) error { return tr.Xattr(c, secret("TOKEN")) }, vfs.ErrNotSupported},

		{"chmod", alice, setattr(secret("TOKEN"), vfs.SetAttr{Mode: true}), vfs.ErrNotPermitted},
		{"chown", alice, setattr(secret("TOKEN"), vfs.SetAttr{Owner: true}), vfs.ErrNotPermitted},
		{"touch by a developer", alice, setattr(secret("TOKEN"), vfs.SetAttr{Times: true}), nil},
		{"touch by a viewer", bob, setattr(secret("TOKEN"), vfs.SetAttr{Times: true}), vfs.ErrDenied},
		{"truncate by a developer", alice, setattr(secret("TOKEN"), vfs.SetAttr{SetSize: true, Size: 2}), nil},
		{"truncate by a viewer", bob, setattr(secret("TOKEN"), vfs.SetAttr{SetSize: true, Size: 0}), vfs.ErrDenied},
		{"truncate of a published secret", alice, setattr(secret("SHARED"), vfs.SetAttr{SetSize: true}), vfs.ErrReadOnly},
		{"truncate past the limit", alice, setattr(secret("TOKEN"), vfs.SetAttr{SetSize: true, Size: vfs.MaxSecretSize + 1}), vfs.ErrTooLarge},

		{"access R by a developer", alice, access(secret("TOKEN"), vfs.MayRead|vfs.MayWrite), nil},
		{"access R by a viewer", bob, access(secret("TOKEN"), vfs.MayRead), vfs.ErrDenied},
		{"access F by a viewer", bob, access(secret("TOKEN"), 0), nil},
		{"access X on a secret", alice, access(secret("TOKEN"), vfs.MayExec), vfs.ErrDenied},
		{"access W on a published secret", alice, access(secret("SHARED"), vfs.MayWrite), vfs.ErrReadOnly},
		{"access W on the root", alice, access(vfs.Root, vfs.MayWrite), vfs.ErrDenied},
		{"access X on the root by the unregistered", anon, access(vfs.Root, vfs.MayExec), vfs.ErrDenied},
		{"access F on the root by the unregistered", anon, access(vfs.Root, 0), nil},
		{"access W on secrets/ by a developer", alice, access(secrets, vfs.MayWrite), nil},
		{"access W on secrets/ by a viewer", bob, access(secrets, vfs.MayWrite), vfs.ErrDenied},
		{"access W on s3/", alice, access(s3dir, vfs.MayWrite), vfs.ErrDenied},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			if err := tc.op(f.tree, tc.caller); !errors.Is(err, tc.want) || (err != nil) != (tc.want != nil) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestAttributesPerCaller(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name   string
		caller vfs.Caller
		ref    vfs.Ref
		perm   uint32
		size   int64
	}{
		{"root, developer", alice, vfs.Root, 0o555, 0},
		{"root, unregistered", anon, vfs.Root, 0, 0},
		{"secrets/, developer", alice, secrets, 0o755, 0},
		{"secrets/, viewer", bob, secrets, 0o555, 0},
		{"s3/, developer", alice, s3dir, 0o555, 0},
		{"secret, developer", alice, secret("TOKEN"), 0o600, int64(len(tokenValue))},
		{"secret, viewer: no rights and no length", bob, secret("TOKEN"), 0, 0},
		{"published secret, developer", alice, secret("SHARED"), 0o400, int64(len("published-value"))},
		{"dataset, developer", alice, dataset("cats"), 0o555, 0},
		{"dataset, viewer: may list it", bob, dataset("cats"), 0o555, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := f.tree.Getattr(ctx, tc.caller, tc.ref, nil)
			if err != nil {
				t.Fatal(err)
			}
			if a.Perm != tc.perm || a.Size != tc.size || a.UID != tc.caller.UID || a.GID != tc.caller.GID || a.Dir != tc.ref.IsDir() {
				t.Errorf("got %+v, want perm %o size %d owned by %d:%d", a, tc.perm, tc.size, tc.caller.UID, tc.caller.GID)
			}
		})
	}
	if _, err := f.tree.Getattr(ctx, anon, secrets, nil); !errors.Is(err, vfs.ErrDenied) {
		t.Errorf("getattr of secrets/ by the unregistered: %v, want ErrDenied", err)
	}
	if _, err := f.tree.Getattr(ctx, carol, secret("HIDDEN"), nil); !errors.Is(err, vfs.ErrNotFound) {
		t.Errorf("getattr of a secret carol may not see: %v, want ErrNotFound", err)
	}
	// A Ref names one resource: the same name given to another since is not it.
	stale := vfs.Ref{Kind: vfs.KindSecret, Name: "TOKEN", ID: f.token + 999}
	if _, err := f.tree.Getattr(ctx, alice, stale, nil); !errors.Is(err, vfs.ErrNotFound) {
		t.Errorf("getattr of a stale ref: %v, want ErrNotFound", err)
	}
}

func TestListingShowsWhatTheCallerMayView(t *testing.T) {
	f := newFixture(t)
	names := func(c vfs.Caller, dir vfs.Ref) []string {
		t.Helper()
		es, err := f.tree.Readdir(ctx, c, dir)
		if err != nil {
			t.Fatal(err)
		}
		var ns []string
		for _, e := range es {
			ns = append(ns, e.Name)
		}
		return ns
	}
	for _, tc := range []struct {
		caller vfs.Caller
		dir    vfs.Ref
		want   []string
	}{
		{alice, vfs.Root, []string{"aliases", "dataproc-templates", "datasets", "images", "models", "nodes", "s3", "secrets"}},
		{alice, secrets, []string{"HIDDEN", "SHARED", "TOKEN"}},
		{bob, secrets, []string{"HIDDEN", "SHARED", "TOKEN"}},
		{carol, secrets, []string{"TOKEN"}},
		{carol, datasets, nil},
		{alice, datasets, []string{"cats", "dogs"}},
		{alice, s3dir, []string{"bucket"}},
	} {
		if got := names(tc.caller, tc.dir); !slices.Equal(got, tc.want) {
			t.Errorf("uid %d lists %s: got %q, want %q", tc.caller.UID, tc.dir.Path(), got, tc.want)
		}
	}
	if ev := f.audit.Take(); len(ev) != 0 {
		t.Errorf("listings filtered by probes must not be audited, got %+v", ev)
	}
}

func TestAudit(t *testing.T) {
	f := newFixture(t)
	h, err := f.tree.Open(ctx, alice, secret("TOKEN"), vfs.OpenMode{Read: true})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	if n, err := h.Read(ctx, alice, buf, 0); err != nil || string(buf[:n]) != tokenValue {
		t.Fatalf("read: %q, %v", buf[:n], err)
	}
	if _, err := h.Read(ctx, bob, buf, 0); !errors.Is(err, vfs.ErrDenied) {
		t.Fatalf("bob reading alice's handle: %v, want ErrDenied", err)
	}
	if _, err := f.tree.Getattr(ctx, bob, secret("TOKEN"), nil); err != nil { // probes only
		t.Fatal(err)
	}
	if _, err := f.tree.Readdir(ctx, anon, vfs.Root); !errors.Is(err, vfs.ErrDenied) {
		t.Fatal(err)
	}
	if _, _, err := f.tree.Lookup(ctx, carol, secrets, "HIDDEN"); !errors.Is(err, vfs.ErrNotFound) {
		t.Fatal(err)
	}

	type rec struct {
		uid     uint32
		op, act string
		path    string
		allowed bool
	}
	var got []rec
	events := f.audit.Take()
	for _, e := range events {
		got = append(got, rec{e.UID, e.Op, e.Action, e.Path, e.Allowed})
		if e.Allowed && (e.Binding == "" || e.Missing != "") || !e.Allowed && (e.Binding != "" || e.Missing == "") {
			t.Errorf("event %+v: an allowed event names its binding, a denied one what is missing", e)
		}
		if e.Time.IsZero() || e.Time.Location().String() != "UTC" {
			t.Errorf("event %+v: time must be set, in UTC", e)
		}
		if strings.Contains(fmt.Sprintf("%+v", e), tokenValue) {
			t.Errorf("event %+v holds the secret's value", e)
		}
	}
	want := []rec{
		{alice.UID, "open", "use-resource", "secrets/TOKEN", true},
		{alice.UID, "read", "use-resource", "secrets/TOKEN", true},
		{bob.UID, "read", "use-resource", "secrets/TOKEN", false},
		{anon.UID, "readdir", "view-project", ".", false},
		{carol.UID, "lookup", "view-resource", "secrets/HIDDEN", false},
	}
	if !slices.Equal(got, want) {
		t.Errorf("audit:\n got %+v\nwant %+v", got, want)
	}
	if events[0].Principal != "alice" || events[0].PrincipalID != 101 || events[3].Principal != "anonymous" {
		t.Errorf("principals: %+v", events)
	}
}

func TestRevocationTakesEffectOnTheNextRead(t *testing.T) {
	f := newFixture(t)
	h, err := f.tree.Open(ctx, alice, secret("TOKEN"), vfs.OpenMode{Read: true})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	if _, err := h.Read(ctx, alice, buf, 0); err != nil {
		t.Fatal(err)
	}
	f.store.Revoke(101, []policy.Action{policy.ActUseResource})
	if n, err := h.Read(ctx, alice, buf, 0); !errors.Is(err, vfs.ErrDenied) || n != 0 {
		t.Fatalf("read after revocation: %d, %v; want ErrDenied", n, err)
	}
	f.store.Grant(101, []policy.Action{policy.ActUseResource})
	if _, err := h.Read(ctx, alice, buf, 0); err != nil {
		t.Fatalf("read after the role is back: %v", err)
	}
}

func TestWriteBufferAndCommit(t *testing.T) {
	f := newFixture(t)
	value := func() string { v, _ := f.store.Secret("TOKEN"); return v }

	// Truncate-on-open replaces; nothing reaches the store before the flush.
	h, err := f.tree.Open(ctx, alice, secret("TOKEN"), vfs.OpenMode{Write: true, Truncate: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Write(ctx, alice, []byte("abc"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Write(ctx, alice, []byte("Z"), 5); err != nil {
		t.Fatal(err)
	}
	if a, _ := f.tree.Getattr(ctx, alice, secret("TOKEN"), h); a.Size != 6 {
		t.Errorf("size of the uncommitted value: %d, want 6", a.Size)
	}
	if value() != tokenValue {
		t.Fatalf("written before flush: %q", value())
	}
	if err := h.Flush(ctx, alice); err != nil {
		t.Fatal(err)
	}
	if value() != "abc\x00\x00Z" {
		t.Fatalf("after flush: %q", value())
	}
	// A flush with nothing new writes nothing: a failing store is not asked.
	f.store.Fail(errors.New("store down"))
	if err := h.Flush(ctx, alice); err != nil {
		t.Fatalf("second flush: %v", err)
	}
	f.store.Fail(nil)
	h.Release()

	// Without truncation, a write changes the value in place.
	h, err = f.tree.Open(ctx, alice, secret("TOKEN"), vfs.OpenMode{Read: true, Write: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Write(ctx, alice, []byte("X"), 1); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 10)
	if n, _ := h.Read(ctx, alice, buf, 0); string(buf[:n]) != "aXc\x00\x00Z" {
		t.Errorf("a writer reads its own value: %q", buf[:n])
	}
	if err := h.Truncate(ctx, alice, 2); err != nil {
		t.Fatal(err)
	}
	if err := h.Flush(ctx, alice); err != nil {
		t.Fatal(err)
	}
	if value() != "aX" {
		t.Fatalf("after truncate: %q", value())
	}

	// The limit: 64 KiB fits, one byte more does not and changes nothing.
	if _, err := h.Write(ctx, alice, []byte("!"), vfs.MaxSecretSize); !errors.Is(err, vfs.ErrTooLarge) {
		t.Fatalf("write past the limit: %v, want ErrTooLarge", err)
	}
	if _, err := h.Write(ctx, alice, make([]byte, vfs.MaxSecretSize), 0); err != nil {
		t.Fatalf("write of the largest value: %v", err)
	}
	if err := h.Truncate(ctx, alice, vfs.MaxSecretSize+1); !errors.Is(err, vfs.ErrTooLarge) {
		t.Fatalf("truncate past the limit: %v", err)
	}

	// The commit asks policy again: revoked, the value stays as it was.
	f.store.Revoke(101, []policy.Action{policy.ActEditResource})
	if err := h.Flush(ctx, alice); !errors.Is(err, vfs.ErrDenied) {
		t.Fatalf("flush after revocation: %v, want ErrDenied", err)
	}
	if value() != "aX" {
		t.Fatalf("a denied commit changed the value: %q", value())
	}
	if _, err := h.Write(ctx, alice, []byte("y"), 0); !errors.Is(err, vfs.ErrDenied) {
		t.Fatalf("write after revocation: %v, want ErrDenied", err)
	}
	h.Release()
}

func TestCreateAndCommitANewSecret(t *testing.T) {
	f := newFixture(t)
	r, a, h, err := f.tree.Create(ctx, alice, secrets, "NEW_1", vfs.OpenMode{Write: true})
	if err != nil {
		t.Fatal(err)
	}
	if r.Name != "NEW_1" || r.ID == 0 || a.Perm != 0o600 || a.Size != 0 {
		t.Errorf("created %+v %+v", r, a)
	}
	if v, ok := f.store.Secret("NEW_1"); !ok || v != "" {
		t.Fatalf("a created secret exists, empty, before any write: %q %v", v, ok)
	}
	if _, err := h.Write(ctx, alice, []byte("v1"), 0); err != nil {
		t.Fatal(err)
	}
	// Deleted behind the open handle: the commit re-creates it, with the right to create.
	if err := f.tree.Unlink(ctx, alice, secrets, "NEW_1"); err != nil {
		t.Fatal(err)
	}
	f.audit.Take()
	if err := h.Flush(ctx, alice); err != nil {
		t.Fatal(err)
	}
	if v, _ := f.store.Secret("NEW_1"); v != "v1" {
		t.Fatalf("committed %q", v)
	}
	if ev := f.audit.Take(); len(ev) != 1 || ev[0].Action != "create-resource" || !ev[0].Allowed || ev[0].Path != "secrets/NEW_1" {
		t.Errorf("commit audit: %+v", ev)
	}
}

func TestPublishedIsReadOnlyAndDecidedThroughTheProject(t *testing.T) {
	f := newFixture(t)
	f.store.Decided()
	h, err := f.tree.Open(ctx, alice, secret("SHARED"), vfs.OpenMode{Read: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, tg := range f.store.Decided() {
		if tg.Via != project {
			t.Errorf("decision on a published secret with target %+v, want Via the project", tg)
		}
	}
	if err := h.Truncate(ctx, alice, 0); !errors.Is(err, vfs.ErrReadOnly) {
		t.Errorf("truncate: %v", err)
	}
	if _, err := h.Write(ctx, alice, []byte("x"), 0); !errors.Is(err, vfs.ErrReadOnly) {
		t.Errorf("write: %v", err)
	}
	if err := f.tree.Access(ctx, alice, dataset("dogs"), vfs.MayWrite); !errors.Is(err, vfs.ErrReadOnly) {
		t.Errorf("access W on a published dataset: %v", err)
	}
	f.store.Decided()
	if _, err := f.tree.Getattr(ctx, alice, secret("TOKEN"), nil); err != nil {
		t.Fatal(err)
	}
	for _, tg := range f.store.Decided() {
		if tg.Via != 0 {
			t.Errorf("decision on an own secret with target %+v, want no Via", tg)
		}
	}
}

func TestStoreErrorsComeBackWrapped(t *testing.T) {
	f := newFixture(t)
	h, err := f.tree.Open(ctx, alice, secret("TOKEN"), vfs.OpenMode{Read: true})
	if err != nil {
		t.Fatal(err)
	}
	f.store.Fail(fmt.Errorf("raft: %w", context.DeadlineExceeded))
	if _, err := h.Read(ctx, alice, make([]byte, 10), 0); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("read with a store timing out: %v", err)
	}
}

func TestNames(t *testing.T) {
	for _, tc := range []struct {
		name            string
		secret, dataset bool
	}{
		{"A", true, false},
		{"_x", true, false},
		{"API_KEY_2", true, false},
		{"a", true, true},
		{"cats-2", false, true},
		{"2cats", false, false},
		{"-cats", false, false},
		{"", false, false},
		{"a.b", false, false},
		{"..", false, false},
		{"a/b", false, false},
		{"a\x00b", false, false},
		{"tab\there", false, false},
		{strings.Repeat("a", 63), true, true},
		{strings.Repeat("a", 64), false, false},
	} {
		if err := vfs.ValidSecretName(tc.name); (err == nil) != tc.secret || err != nil && !errors.Is(err, vfs.ErrInvalidName) {
			t.Errorf("ValidSecretName(%q) = %v", tc.name, err)
		}
		if err := vfs.ValidResourceName(tc.name); (err == nil) != tc.dataset || err != nil && !errors.Is(err, vfs.ErrInvalidName) {
			t.Errorf("ValidResourceName(%q) = %v", tc.name, err)
		}
	}
}

// dataFixture is newFixture with datasets and buckets: cats (initializing,
// a.txt), fish (sealed, f.txt), dogs (published, d.txt); connectors bucket
// (read-write, o.txt), archive (read-only), off (not activated).
type dataFixture struct {
	*fixture
	datasets                *fake.Datasets
	buckets                 *fake.Buckets
	cats, fish, dogs        policy.ID
	bucket, archive, offCon policy.ID
}

func newDataFixture(t *testing.T) *dataFixture {
	f := &dataFixture{fixture: newFixture(t), datasets: fake.NewDatasets(t.TempDir(), ""), buckets: fake.NewBuckets()}
	s := f.store
	cats, _ := s.Resource(project, vfs.KindDataset, "cats")
	dogs, _ := s.Resource(project, vfs.KindDataset, "dogs")
	bucket, _ := s.Resource(project, vfs.KindS3, "bucket")
	f.cats, f.dogs, f.bucket = cats.ID, dogs.ID, bucket.ID
	f.fish = s.Add(vfs.KindDataset, "fish", false)
	f.archive = s.Add(vfs.KindS3, "archive", false)
	f.offCon = s.Add(vfs.KindS3, "off", false)
	s.SetActive("off", false)
	f.datasets.Put(f.cats, "a.txt", []byte("cats"))
	f.datasets.Put(f.fish, "f.txt", []byte("fish"))
	f.datasets.Seal(f.fish)
	f.datasets.Put(f.dogs, "d.txt", []byte("dogs"))
	f.buckets.Of(f.bucket).Put("o.txt", []byte("object"))
	f.buckets.Of(f.archive).Put("o.txt", []byte("object"))
	f.buckets.Of(f.archive).SetReadOnly(true)
	f.tree = vfs.New(s, f.audit, project, "acme/cats/p1", vfs.WithDatasets(f.datasets), vfs.WithBuckets(f.buckets))
	return f
}

func file(kind, name, sub string) vfs.Ref {
	return vfs.Ref{Kind: kind, Name: name, Sub: sub, File: true}
}

// TestDataCheckpoint runs operations in datasets and buckets as each kind
// of caller, each against a fresh fixture.
func TestDataCheckpoint(t *testing.T) {
	r, w := vfs.OpenMode{Read: true}, vfs.OpenMode{Write: true, Truncate: true}
	open := func(ref vfs.Ref, m vfs.OpenMode) func(*dataFixture, vfs.Caller) error {
		return func(f *dataFixture, c vfs.Caller) error {
			h, err := f.tree.Open(ctx, c, ref, m)
			if err == nil {
				h.Release()
			}
			return err
		}
	}
	lookup := func(dir vfs.Ref, name string) func(*dataFixture, vfs.Caller) error {
		return func(f *dataFixture, c vfs.Caller) error { _, _, err := f.tree.Lookup(ctx, c, dir, name); return err }
	}
	readdir := func(dir vfs.Ref) func(*dataFixture, vfs.Caller) error {
		return func(f *dataFixture, c vfs.Caller) error { _, err := f.tree.Readdir(ctx, c, dir); return err }
	}
	create := func(dir vfs.Ref, name string) func(*dataFixture, vfs.Caller) error {
		return func(f *dataFixture, c vfs.Caller) error {
			_, _, h, err := f.tree.Create(ctx, c, dir, name, w)
			if err == nil {
				h.Release()
			}
			return err
		}
	}
	mkdir := func(dir vfs.Ref, name string) func(*dataFixture, vfs.Caller) error {
		return func(f *dataFixture, c vfs.Caller) error { _, _, err := f.tree.Mkdir(ctx, c, dir, name); return err }
	}
	unlink := func(dir vfs.Ref, name string) func(*dataFixture, vfs.Caller) error {
		return func(f *dataFixture, c vfs.Caller) error { return f.tree.Unlink(ctx, c, dir, name) }
	}
	rename := func(dir vfs.Ref, name string, to vfs.Ref, newName string) func(*dataFixture, vfs.Caller) error {
		return func(f *dataFixture, c vfs.Caller) error {
			_, err := f.tree.Rename(ctx, c, dir, name, to, newName, 0)
			return err
		}
	}
	cats, fish, dogs := dataset("cats"), dataset("fish"), dataset("dogs")
	bucket := vfs.Ref{Kind: vfs.KindS3, Name: "bucket"}
	archive := vfs.Ref{Kind: vfs.KindS3, Name: "archive"}
	off := vfs.Ref{Kind: vfs.KindS3, Name: "off"}

	for _, tc := range []struct {
		name   string
		caller vfs.Caller
		op     func(*dataFixture, vfs.Caller) error
		want   error
	}{
		{"developer reads a dataset's file", alice, open(file(vfs.KindDataset, "cats", "a.txt"), r), nil},
		{"viewer looks up a dataset's file", bob, lookup(cats, "a.txt"), nil},
		{"viewer lists a dataset", bob, readdir(cats), nil},
		{"viewer reads a dataset's file", bob, open(file(vfs.KindDataset, "cats", "a.txt"), r), vfs.ErrDenied},
		{"carol looks into a dataset she may not view", carol, lookup(cats, "a.txt"), vfs.ErrNotFound},
		{"missing file", alice, lookup(cats, "nope"), vfs.ErrNotFound},
		{"developer writes an initializing dataset", alice, open(file(vfs.KindDataset, "cats", "a.txt"), w), nil},
		{"viewer writes an initializing dataset", bob, open(file(vfs.KindDataset, "cats", "a.txt"), w), vfs.ErrDenied},
		{"developer writes a sealed dataset", alice, open(file(vfs.KindDataset, "fish", "f.txt"), w), vfs.ErrReadOnly},
		{"developer reads a sealed dataset", alice, open(file(vfs.KindDataset, "fish", "f.txt"), r), nil},
		{"developer creates in a sealed dataset", alice, create(fish, "new"), vfs.ErrReadOnly},
		{"developer creates in a published dataset", alice, create(dogs, "new"), vfs.ErrReadOnly},
		{"developer reads a published dataset", alice, open(file(vfs.KindDataset, "dogs", "d.txt"), r), nil},
		{"developer creates a file", alice, create(cats, "new"), nil},
		{"bad file name", alice, create(cats, ".."), vfs.ErrInvalidName},
		{"developer makes a directory", alice, mkdir(cats, "d"), nil},
		{"developer unlinks a file", alice, unlink(cats, "a.txt"), nil},
		{"viewer unlinks a file", bob, unlink(cats, "a.txt"), vfs.ErrDenied},
		{"unlink in a sealed dataset", alice, unlink(fish, "f.txt"), vfs.ErrReadOnly},
		{"rename in a dataset", alice, rename(cats, "a.txt", cats, "b.txt"), vfs.ErrCrossDevice},
		{"a dataset's root is not opened", alice, open(cats, r), vfs.ErrIsDir},

		{"developer lists a bucket", alice, readdir(bucket), nil},
		{"viewer lists a bucket", bob, readdir(bucket), vfs.ErrDenied},
		{"viewer walks through a connector", bob, lookup(s3dir, "bucket"), vfs.ErrDenied},
		{"carol walks through a connector", carol, lookup(s3dir, "bucket"), vfs.ErrNotFound},
		{"inactive connector", alice, lookup(s3dir, "off"), vfs.ErrNotFound},
		{"inactive connector listed into", alice, readdir(off), vfs.ErrNotFound},
		{"developer reads an object", alice, open(file(vfs.KindS3, "bucket", "o.txt"), r), nil},
		{"developer writes an object", alice, open(file(vfs.KindS3, "bucket", "o.txt"), w), nil},
		{"write without truncation", alice, open(file(vfs.KindS3, "bucket", "o.txt"), vfs.OpenMode{Write: true}), vfs.ErrNotSupported},
		{"write to a read-only connector", alice, open(file(vfs.KindS3, "archive", "o.txt"), w), vfs.ErrReadOnly},
		{"create in a read-only connector", alice, create(archive, "new"), vfs.ErrReadOnly},
		{"developer creates an object", alice, create(bucket, "new"), nil},
		{"rename in a bucket", alice, rename(bucket, "o.txt", bucket, "p.txt"), nil},
		{"rename across buckets", alice, rename(bucket, "o.txt", archive, "p.txt"), vfs.ErrCrossDevice},
		{"unlink in a read-only connector", alice, unlink(archive, "o.txt"), vfs.ErrReadOnly},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newDataFixture(t)
			if err := tc.op(f, tc.caller); !errors.Is(err, tc.want) || (err != nil) != (tc.want != nil) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestDatasetWritesAndSpace(t *testing.T) {
	f := newDataFixture(t)
	f.datasets.Limit(f.cats, 10) // "cats" uses 4: 6 left
	h, err := f.tree.Open(ctx, alice, file(vfs.KindDataset, "cats", "a.txt"), vfs.OpenMode{Read: true, Write: true})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Release()
	if _, err := h.Write(ctx, alice, []byte("CATS!!"), 4); err != nil {
		t.Fatalf("a write that fits: %v", err)
	}
	if _, err := h.Write(ctx, alice, []byte("!"), 10); !errors.Is(err, vfs.ErrNoSpace) {
		t.Fatalf("a write past the limit: %v", err)
	}
	buf := make([]byte, 20)
	if n, _ := h.Read(ctx, alice, buf, 0); string(buf[:n]) != "catsCATS!!" {
		t.Errorf("read back %q", buf[:n])
	}
	if v, _ := f.datasets.Get(f.cats, "a.txt"); string(v) != "cats" {
		t.Errorf("committed before the flush: %q", v)
	}
	if _, err := h.Read(ctx, bob, buf, 0); !errors.Is(err, vfs.ErrDenied) {
		t.Errorf("bob reading alice's handle: %v", err)
	}
	if err := h.Flush(ctx, bob); !errors.Is(err, vfs.ErrDenied) {
		t.Errorf("bob's flush: %v", err)
	}
	// bob's refused flush dropped nothing on the store's side; write again and commit as alice.
	if _, err := h.Write(ctx, alice, []byte("c"), 0); err != nil {
		t.Fatal(err)
	}
	if err := h.Flush(ctx, alice); err != nil {
		t.Fatal(err)
	}
	if v, _ := f.datasets.Get(f.cats, "a.txt"); string(v) != "catsCATS!!" {
		t.Errorf("committed %q", v)
	}
	// Sealed while open: the next write is refused.
	f.datasets.Seal(f.cats)
	if _, err := h.Write(ctx, alice, []byte("x"), 0); !errors.Is(err, vfs.ErrReadOnly) {
		t.Errorf("write after the seal: %v", err)
	}
	// A denied read of a dataset is audited with its full path.
	f.audit.Take()
	if _, err := f.tree.Open(ctx, bob, file(vfs.KindDataset, "cats", "a.txt"), vfs.OpenMode{Read: true}); !errors.Is(err, vfs.ErrDenied) {
		t.Fatal(err)
	}
	if ev := f.audit.Take(); len(ev) != 1 || ev[0].Path != "datasets/cats/a.txt" || ev[0].Action != "use-resource" {
		t.Errorf("audit: %+v", ev)
	}
}

func TestSealedAttributesAreTheSameForEveryone(t *testing.T) {
	f := newDataFixture(t)
	ref := file(vfs.KindDataset, "fish", "f.txt")
	var first vfs.Attr
	for i, c := range []vfs.Caller{alice, bob} {
		_, a, err := f.tree.Lookup(ctx, c, dataset("fish"), "f.txt")
		if err != nil {
			t.Fatal(err)
		}
		if a.Timeout == 0 || a.UID != 0 || a.Perm != 0o444 {
			t.Errorf("uid %d: %+v: want kept, root's, read-only", c.UID, a)
		}
		if i == 0 {
			first = a
		} else if a != first {
			t.Errorf("alice sees %+v, bob %+v", first, a)
		}
	}
	// The gate is the caller's own, never kept.
	if a, err := f.tree.Getattr(ctx, alice, dataset("fish"), nil); err != nil || a.Timeout != 0 || a.UID != alice.UID {
		t.Errorf("gate: %+v %v", a, err)
	}
	// An initializing dataset's entries are the caller's, never kept.
	if _, a, err := f.tree.Lookup(ctx, bob, dataset("cats"), "a.txt"); err != nil || a.Timeout != 0 || a.UID != bob.UID || a.Perm != 0 {
		t.Errorf("initializing, bob: %+v %v", a, err)
	}
	if _, err := f.tree.Getattr(ctx, carol, ref, nil); !errors.Is(err, vfs.ErrNotFound) {
		t.Errorf("carol: %v", err)
	}
}

func TestObjectWritesAreSequential(t *testing.T) {
	f := newDataFixture(t)
	b := f.buckets.Of(f.bucket)
	c := alice
	c.PID = 42
	_, _, h, err := f.tree.Create(ctx, c, vfs.Ref{Kind: vfs.KindS3, Name: "bucket"}, "new", vfs.OpenMode{Write: true})
	if err != nil {
		t.Fatal(err)
	}
	// A flush before anything is written (a shell's dup2 and close) commits nothing.
	if err := h.Flush(ctx, c); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Write(ctx, c, []byte("ab"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Write(ctx, c, []byte("x"), 5); !errors.Is(err, vfs.ErrNotSupported) {
		t.Errorf("a write past the end: %v", err)
	}
	if _, err := h.Write(ctx, c, []byte("cd"), 2); err != nil {
		t.Fatal(err)
	}
	other := c
	other.PID = 43 // a child that inherited the descriptor
	if err := h.Flush(ctx, other); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.Get("new"); ok {
		t.Error("another process's close committed the object")
	}
	if err := h.Flush(ctx, c); err != nil {
		t.Fatal(err)
	}
	if v, _ := b.Get("new"); string(v) != "abcd" {
		t.Errorf("committed %q", v)
	}
	if _, err := h.Write(ctx, c, []byte("e"), 4); !errors.Is(err, vfs.ErrNotSupported) {
		t.Errorf("a write after the commit: %v", err)
	}
	if err := h.Release(); err != nil {
		t.Errorf("release after the commit: %v", err)
	}
}
