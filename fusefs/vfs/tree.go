// Package vfs is the behaviour of a mounted project, apart from FUSE: which
// entries a caller sees, with which attributes, and what reading, writing,
// creating and deleting them does. The adapter in package fusefs turns kernel
// requests into calls of this package and its errors into errnos; everything
// that can be decided without a kernel is decided and tested here.
//
// The tree of a project:
//
//	aliases/NAME.json             descriptors, one read-only JSON file per
//	dataproc-templates/NAME.json  resource (descriptor.go): the project's own
//	images/NAME.json              and those published to its community
//	nodes/NAME.json
//	datasets/NAME/   the project's datasets and those published to its community
//	models/NAME/     its models' and checkpoints' files, read-only (own or published)
//	s3/NAME/         its S3 connectors (own or published)
//	secrets/NAME     one file per secret; its content is the value
//
// Every operation passes the caller (the uid and gid the kernel reports) and
// is decided by policy through one checkpoint, Tree.authorize. The contents
// of datasets, models and buckets come from the Datasets and Buckets the
// tree is given (data.go); dataset.go and bucket.go serve them (a model's
// files are stored like a dataset's, and served by the same code).
//
// Caching. What a caller is shown depends on who asks, and a role can be
// revoked at any moment, so the kernel is told to keep nothing (Attr.Timeout
// 0) — except below two gates, where the tree can do better:
//
//   - below datasets/NAME/ of a sealed dataset (or models/NAME/ of a sealed
//     model), whose contents never change,
//     entries and attributes are kept for sealedTimeout; below s3/NAME/ for
//     bucketTimeout, as objects change only now and then;
//   - what is kept there is the same for every caller (owned by root, the
//     permission bits say what the data is — read-only or writable — not
//     what the caller may do), so one caller's cached answer says nothing
//     about another caller;
//   - the gate itself, datasets/NAME or s3/NAME, is never kept: every path
//     walk from outside the gate asks the tree again (a LOOKUP of NAME,
//     decided by policy for the caller), so a caller who may not see or use
//     the resource is stopped at the gate, however much is cached below it;
//   - what still reaches the cached nodes without passing the gate is a path
//     relative to a directory the process already holds below it (its
//     working directory, or a descriptor for openat): a caller whose role
//     is revoked may still stat names there until the timeout runs out. It
//     cannot read: every open asks policy again.
//   - open files of a sealed dataset keep their pages in the kernel's cache
//     (or read straight from the local copy, FUSE passthrough); a file open
//     before a role was revoked may go on reading: policy is decided at open,
//     and again on every read that reaches the tree.
package vfs

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/sphere-sandbox/sphere/policy"
)

// MaxSecretSize bounds a secret's value written through the mount: the value
// is buffered in memory until it is committed.
const MaxSecretSize = 64 << 10

// storeTimeout bounds every Store call that takes a context, so that a store
// that hangs (a leader that does not answer) turns into EIO rather than a
// process stuck in the kernel.
const storeTimeout = 10 * time.Second

// How long the kernel may keep the entries and attributes below a gate,
// shared by every caller (see the package comment): a sealed dataset never
// changes; a bucket's objects may, behind the mount's back, so a changed
// object shows within bucketTimeout.
const (
	sealedTimeout = time.Hour
	bucketTimeout = time.Second
)

// dirs are the directories at the root, in listing order, and the kind of
// resource each holds.
var dirs = []struct{ name, kind string }{
	{"aliases", KindAlias},
	{"dataproc-templates", KindDataprocTemplate},
	{"datasets", KindDataset},
	{"images", KindImage},
	{"models", KindModel},
	{"nodes", KindNode},
	{"s3", KindS3},
	{"secrets", KindSecret},
}

// descriptorExt ends the name of a descriptor's file.
const descriptorExt = ".json"

// Tree is one mounted project. It keeps no state about callers or decisions:
// every operation asks the Store, so a change in the store (a revoked role,
// a deleted secret) shows on the next operation.
type Tree struct {
	store    Store
	audit    Auditor
	datasets Datasets // nil: datasets' contents are not served
	buckets  Buckets  // nil: buckets' contents are not served
	project  policy.ID
	path     string    // "org/community/project", for logs
	born     time.Time // the time shown on the directories, which have none in the store
}

// New returns the tree of project, whose path (like "acme/cats/p1") names it
// in logs. Audit events go to audit. Without WithDatasets and WithBuckets,
// datasets/NAME/ and s3/NAME/ are empty and refuse what would change them
// (ErrNotSupported).
func New(store Store, audit Auditor, project policy.ID, projectPath string, opts ...Option) *Tree {
	t := &Tree{store: store, audit: audit, project: project, path: projectPath, born: time.Now().UTC()}
	for _, o := range opts {
		o(t)
	}
	return t
}

// String names the tree's project, for logs.
func (t *Tree) String() string { return t.path }

// Caller is who asks, as the kernel reports it for a request.
type Caller struct {
	UID, GID uint32
	// PID is the calling process (its thread group), for the operations
	// whose meaning depends on it: opening or creating a file to write, and
	// its flushes (an object commits at the close of the process that
	// opened it). 0 if the kernel names none.
	PID uint32
}

// Ref names a node of the tree. The adapter keeps one per inode and passes it
// back with every operation; the tree resolves it against the store each
// time, so a Ref carries a name, never a right.
type Ref struct {
	Kind string    // "" for the root; otherwise the kind of the directory or resource
	Name string    // the resource's name; "" for the root and the kind directories
	ID   policy.ID // the resource's ID, so a name given to another resource since no longer matches

	// Below a dataset's or a connector's directory (the gate):
	Sub  string // the path inside it, like "a/b.csv"; "" for the gate and everything above
	File bool   // Sub names a file; otherwise a directory
	Ino  uint64 // the node's inode number, unique in the mount; 0 above the gate
}

// Root is the Ref of the tree's root.
var Root = Ref{}

// IsDir reports whether the node is a directory: everything but a secret,
// a descriptor and the files in datasets, models and buckets.
func (r Ref) IsDir() bool {
	if r.Sub != "" {
		return !r.File
	}
	return r.Name == "" || r.Kind != KindSecret && !isDescriptor(r.Kind)
}

// Dataset reports whether the node is a dataset's or a model's directory
// (the gate) or below it: both are served by the same code.
func (r Ref) Dataset() bool { return r.class() == classDataset }

// entryName is the name of the resource r in its kind directory: a
// descriptor's file is NAME.json.
func (r Ref) entryName() string {
	if isDescriptor(r.Kind) {
		return r.Name + descriptorExt
	}
	return r.Name
}

// resourceName is the name of the resource the entry name of a kind
// directory stands for, if it stands for one.
func resourceName(kind, entry string) (string, bool) {
	if isDescriptor(kind) {
		return strings.CutSuffix(entry, descriptorExt)
	}
	return entry, true
}

// Path is the node's path inside the mount, "." for the root.
func (r Ref) Path() string {
	switch {
	case r.Kind == "":
		return "."
	case r.Name == "":
		return dirName(r.Kind)
	case r.Sub == "":
		return dirName(r.Kind) + "/" + r.entryName()
	default:
		return dirName(r.Kind) + "/" + r.Name + "/" + r.Sub
	}
}

// join is the path, below r's gate, of name in the directory r.
func (r Ref) join(name string) string {
	if r.Sub == "" {
		return name
	}
	return r.Sub + "/" + name
}

func dirName(kind string) string {
	for _, d := range dirs {
		if d.kind == kind {
			return d.name
		}
	}
	panic("vfs: unknown kind " + kind)
}

// Attr is a node as one caller sees it: the caller owns everything it is
// shown, and the permission bits say what the caller's roles let it do.
type Attr struct {
	Dir      bool
	Perm     uint32 // permission bits only
	Size     int64  // a secret's length, for those who may read it; a file's
	Mtime    time.Time
	UID, GID uint32
	// Unlinked: a file removed while a handle is open on it (fstat).
	Unlinked bool
	// Timeout is how long the kernel may keep the entry and these
	// attributes and answer any caller from them: 0 unless they are the
	// same for every caller (see the package comment).
	Timeout time.Duration
	// EntryTimeout, when longer, is how long the kernel may keep the name
	// alone (its attributes still follow Timeout). The fixed folders at the
	// root exist for everyone; what a caller may see is decided below them,
	// at the gates, so keeping their names saves a round trip per path walk
	// and tells nobody anything.
	EntryTimeout time.Duration
}

// principal is who a caller is to policy.
type principal struct {
	id   policy.ID
	name string
}

// auditing says which decisions of a query reach the Auditor.
type auditing uint8

const (
	// auditDenials: every denial is recorded; the default.
	auditDenials auditing = iota
	// auditAll: decisions on a secret's value or existence (use, edit,
	// create, delete) are recorded whether allowed or denied.
	auditAll
	// auditNone: probes that only shape what a caller is shown (permission
	// bits, which entries a listing holds). Their denials refuse nothing
	// and would flood the audit with every ls.
	auditNone
)

// query is one question to policy, with what the answer means for the
// operation that asks it.
type query struct {
	op     string // the filesystem operation, for audit
	path   string // inside the mount, for audit
	action policy.Action
	target policy.Target
	hidden bool // a denial must look like absence: ErrNotFound, not ErrDenied
	audit  auditing
}

// authorize is the tree's only door to policy: every operation passes
// through it, and nothing is read from or changed in the store on a caller's
// behalf before it has returned nil for that caller.
//
// It guarantees:
//   - the caller's uid is mapped to its principal and policy decides on the
//     store's current state; no answer is remembered, so a revoked role fails
//     the next operation, including the next read of a secret already open;
//   - a denial returns ErrDenied, or ErrNotFound when q.hidden (the action
//     was the right to see the thing, and a caller without it must not learn
//     that it exists);
//   - every denial, and every decision on a secret's value or existence, is
//     recorded with the Auditor, unless q is a probe (auditNone). A record
//     holds the principal, the action, the path and the binding or missing
//     role, never a value.
//
// It returns the principal, for the Store calls that follow.
func (t *Tree) authorize(c Caller, q query) (principal, error) {
	id, name := t.store.Principal(c.UID)
	p := principal{id: id, name: name}
	d := t.store.Decide(id, q.action, q.target)
	if q.audit == auditAll || (q.audit == auditDenials && !d.Allowed) {
		e := Event{
			Time:        time.Now().UTC(),
			UID:         c.UID,
			Principal:   name,
			PrincipalID: id,
			Op:          q.op,
			Action:      q.action.String(),
			Path:        q.path,
			Allowed:     d.Allowed,
			Missing:     d.Missing,
		}
		if d.Allowed {
			e.Binding = fmt.Sprintf("%s on %d", d.By.Role, d.By.On)
		}
		t.audit.Record(e)
	}
	switch {
	case d.Allowed:
		return p, nil
	case q.hidden:
		return p, ErrNotFound
	default:
		return p, ErrDenied
	}
}

// may is authorize for a probe: whether the caller could, recorded nowhere.
func (t *Tree) may(c Caller, q query) bool {
	q.audit = auditNone
	_, err := t.authorize(c, q)
	return err == nil
}

// onProject is a query about the project itself.
func (t *Tree) onProject(op, path string, a policy.Action) query {
	return query{op: op, path: path, action: a, target: policy.Target{ID: t.project}}
}

// onResource is a query about a resource, reached from this project: a
// published one is decided through the project it is used from.
func (t *Tree) onResource(op string, res Resource, a policy.Action) query {
	q := query{op: op, path: Ref{Kind: res.Kind, Name: res.Name}.Path(), action: a, target: policy.Target{ID: res.ID}}
	if res.Published {
		q.target.Via = t.project
	}
	if res.Kind == KindSecret && a != policy.ActViewResource {
		q.audit = auditAll
	}
	return q
}

// storeContext bounds a Store call made for a request.
func storeContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, storeTimeout)
}

// removable says whether op, "unlink" or "rmdir", applies to an entry
// that is a directory or not.
func removable(op string, dir bool) error {
	switch {
	case op == "unlink" && dir:
		return ErrIsDir
	case op == "rmdir" && !dir:
		return ErrNotDir
	}
	return nil
}
