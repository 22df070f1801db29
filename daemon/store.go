package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/sphere-sandbox/sphere/cluster"
	"github.com/sphere-sandbox/sphere/daemon/api"
	"github.com/sphere-sandbox/sphere/daemon/audit"
	"github.com/sphere-sandbox/sphere/fusefs/vfs"
	"github.com/sphere-sandbox/sphere/policy"
)

// treeStore is the daemon as a mounted tree sees it. Reads come from this
// node's state; writes are proposed as the caller, so the state machine
// decides them exactly as it decides the CLI's.
type treeStore struct{ d *Daemon }

var _ vfs.Store = treeStore{}

func (t treeStore) Principal(uid uint32) (policy.ID, string) {
	id, name := policy.Anonymous, "anonymous"
	t.d.node.FSM().Read(func(s *cluster.State) {
		if p, ok := s.UserByUID(uid); ok {
			id, name = p, s.PrincipalName(p)
		}
	})
	return id, name
}

func (t treeStore) Decide(p policy.ID, a policy.Action, target policy.Target) policy.Decision {
	return t.d.decide(p, a, target)
}

func (t treeStore) Resources(project policy.ID, kind string) []vfs.Resource {
	var out []vfs.Resource
	t.d.node.FSM().Read(func(s *cluster.State) {
		p, ok := s.Entities[project]
		if !ok {
			return
		}
		for _, e := range s.Children(project, policy.KindResource, kind) {
			out = append(out, t.resourceOf(s, e, false))
		}
		for _, rid := range s.Index().PublishedTo(p.Parent) {
			if e, ok := s.Entities[rid]; ok && e.Type == kind && e.Parent != project {
				out = append(out, t.resourceOf(s, e, true))
			}
		}
	})
	sortResources(out)
	return out
}

func sortResources(rs []vfs.Resource) {
	slices.SortFunc(rs, func(a, b vfs.Resource) int { return strings.Compare(a.Name, b.Name) })
}

func (t treeStore) resourceOf(s *cluster.State, e *cluster.Entity, published bool) vfs.Resource {
	r := vfs.Resource{ID: e.ID, Kind: e.Type, Name: e.Name, Project: e.Parent, Published: published,
		Size: int64(e.SecretLen), Modified: e.Modified, Active: e.Settings[s3Active] == "true"}
	if e.Spec != nil && e.Type != cluster.TypeModel {
		r.Descriptor = descriptor(t.d.view(s, caller{}, e, false))
	}
	return r
}

// descriptor is the content of a descriptor's file in a mount: the
// resource as `show --output json` has it, without what depends on who
// asks (members); it holds no secret.
func descriptor(v api.Entity) []byte {
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		panic("daemon: encode a descriptor: " + err.Error()) // plain data: cannot fail
	}
	return append(out, '\n')
}

func (t treeStore) Resource(project policy.ID, kind, name string) (vfs.Resource, bool) {
	var out vfs.Resource
	var found bool
	t.d.node.FSM().Read(func(s *cluster.State) {
		if e, ok := s.Child(project, policy.KindResource, kind, name); ok {
			out, found = t.resourceOf(s, e, false), true
			return
		}
		p, ok := s.Entities[project]
		if !ok {
			return
		}
		// A project's own resource shadows a published one of the same name.
		for _, rid := range s.Index().PublishedTo(p.Parent) {
			if e, ok := s.Entities[rid]; ok && e.Type == kind && e.Name == name && e.Parent != project {
				out, found = t.resourceOf(s, e, true), true
				return
			}
		}
	})
	return out, found
}

// ReadSecret decrypts a secret the tree's checkpoint has already allowed.
func (t treeStore) ReadSecret(_ context.Context, _ policy.ID, secret policy.ID) ([]byte, error) {
	v, err := t.d.openSecret(secret)
	return v, storeError(err)
}

func (t treeStore) WriteSecret(ctx context.Context, p policy.ID, project policy.ID, name string, value []byte) error {
	c := caller{Principal: p}
	var projectPath string
	t.d.node.FSM().Read(func(s *cluster.State) { projectPath = s.Path(project) })
	cmd, err := t.d.sealSecret(c, projectPath, name, value, true)
	if err == nil {
		_, err = t.d.propose(ctx, c, cluster.CmdCreate, cmd)
	}
	return storeError(err)
}

// CreateResource is `mkdir datasets/NAME`: the CLI's `dataset create`.
// Secrets are created by writing them, connectors only with the CLI (they
// need an endpoint and a key).
func (t treeStore) CreateResource(ctx context.Context, p policy.ID, project policy.ID, kind, name string) error {
	if kind != vfs.KindDataset {
		return fmt.Errorf("%w: creating a %s through the mount", vfs.ErrNotSupported, kind)
	}
	_, err := t.d.createDataset(ctx, p, project, name, "", 0)
	return storeError(err)
}

func (t treeStore) DeleteResource(ctx context.Context, p policy.ID, project policy.ID, kind, name string) error {
	var id policy.ID
	t.d.node.FSM().Read(func(s *cluster.State) {
		if e, ok := s.Child(project, policy.KindResource, kind, name); ok {
			id = e.ID
		}
	})
	if id == 0 {
		return vfs.ErrNotFound
	}
	_, err := t.d.propose(ctx, caller{Principal: p}, cluster.CmdDelete, cluster.Delete{ID: id})
	return storeError(err)
}

// storeError maps the daemon's error codes to the tree's errors.
func storeError(err error) error {
	if err == nil {
		return nil
	}
	var mapped error
	switch cluster.CodeOf(err) {
	case cluster.CodeDenied:
		mapped = vfs.ErrDenied
	case cluster.CodeNotFound:
		mapped = vfs.ErrNotFound
	case cluster.CodeExists:
		mapped = vfs.ErrExists
	case cluster.CodeNoSpace:
		mapped = vfs.ErrNoSpace
	case cluster.CodeReadOnly:
		mapped = vfs.ErrReadOnly
	case cluster.CodeInvalid:
		if errors.Is(err, cluster.ErrInvalidName) {
			mapped = vfs.ErrInvalidName
		} else {
			mapped = vfs.ErrTooLarge
		}
	default:
		return err
	}
	return fmt.Errorf("%w: %v", mapped, err)
}

// treeAudit writes the tree's events to the audit log.
type treeAudit struct {
	log     *audit.Log
	project string
}

func (a treeAudit) Record(e vfs.Event) {
	decision := "deny"
	if e.Allowed {
		decision = "allow"
	}
	a.log.Record(audit.Record{
		Time: e.Time, UID: e.UID, Principal: e.Principal, Action: e.Op + ":" + e.Action,
		Path: a.project + "/" + e.Path, Decision: decision, Binding: e.Binding, Missing: e.Missing,
	})
}
