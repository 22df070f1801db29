// Package fake is an in-memory vfs.Store and vfs.Auditor for the tests of
// fusefs and fusefs/vfs. Policy is a set of allowed (principal, action,
// target) triples the test flips; the store holds one project's resources.
package fake

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sphere-sandbox/sphere/fusefs/vfs"
	"github.com/sphere-sandbox/sphere/policy"
)

// Role bundles, as the tests grant them: what a viewer and a developer of
// the project may do to it and its resources.
var (
	Viewer    = []policy.Action{policy.ActViewProject, policy.ActViewResource}
	Developer = []policy.Action{policy.ActViewProject, policy.ActViewResource, policy.ActRunCode,
		policy.ActCreateResource, policy.ActUseResource, policy.ActEditResource, policy.ActDeleteResource}
)

type grant struct {
	p   policy.ID
	a   policy.Action
	id  policy.ID // 0: any target
	via policy.ID
}

type user struct {
	id   policy.ID
	name string
}

type key struct{ kind, name string }

// Store is a vfs.Store of the one project Project.
type Store struct {
	Project policy.ID

	mu      sync.Mutex
	users   map[uint32]user
	allowed map[grant]bool
	res     map[key]vfs.Resource
	values  map[policy.ID][]byte
	nextID  policy.ID
	fail    error
	decided []policy.Target
}

// NewStore returns an empty store of project.
func NewStore(project policy.ID) *Store {
	return &Store{
		Project: project,
		users:   map[uint32]user{},
		allowed: map[grant]bool{},
		res:     map[key]vfs.Resource{},
		values:  map[policy.ID][]byte{},
		nextID:  1000,
	}
}

// AddUser registers uid as principal p.
func (s *Store) AddUser(uid uint32, p policy.ID, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[uid] = user{p, name}
}

// Grant lets p do every action of as on any target.
func (s *Store) Grant(p policy.ID, as []policy.Action) {
	for _, a := range as {
		s.Allow(p, a, policy.Target{})
	}
}

// Revoke takes back what Grant gave.
func (s *Store) Revoke(p policy.ID, as []policy.Action) {
	for _, a := range as {
		s.Disallow(p, a, policy.Target{})
	}
}

// Allow lets p do a on t exactly (ID and Via); a zero t means any target.
func (s *Store) Allow(p policy.ID, a policy.Action, t policy.Target) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.allowed[grant{p, a, t.ID, t.Via}] = true
}

// Disallow takes back what Allow gave.
func (s *Store) Disallow(p policy.ID, a policy.Action, t policy.Target) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.allowed, grant{p, a, t.ID, t.Via})
}

// Fail makes every call that takes a context return err (nil: work again).
func (s *Store) Fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = err
}

// Decided returns the targets of every decision so far, and forgets them.
func (s *Store) Decided() []policy.Target {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.decided
	s.decided = nil
	return d
}

// Add puts a resource of the project (or, published, one reached through a
// publication) in the store and returns its ID.
func (s *Store) Add(kind, name string, published bool) policy.ID {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.add(kind, name, published)
}

func (s *Store) add(kind, name string, published bool) policy.ID {
	s.nextID++
	owner := s.Project
	if published {
		owner = s.Project + 1
	}
	s.res[key{kind, name}] = vfs.Resource{ID: s.nextID, Kind: kind, Name: name, Project: owner,
		Published: published, Modified: time.Now().UTC(), Active: kind == vfs.KindS3}
	return s.nextID
}

// SetDescriptor gives the resource kind/name the descriptor content.
func (s *Store) SetDescriptor(kind, name string, content []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.res[key{kind, name}]
	r.Descriptor = bytes.Clone(content)
	s.res[key{kind, name}] = r
}

// SetActive activates or deactivates the connector name.
func (s *Store) SetActive(name string, active bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.res[key{vfs.KindS3, name}]
	r.Active = active
	s.res[key{vfs.KindS3, name}] = r
}

// Clear removes every resource.
func (s *Store) Clear() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.res)
	clear(s.values)
}

// SetSecret creates or replaces a secret, as the CLI would.
func (s *Store) SetSecret(name, value string, published bool) policy.ID {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.res[key{vfs.KindSecret, name}]
	if !ok {
		s.add(vfs.KindSecret, name, published)
		r = s.res[key{vfs.KindSecret, name}]
	}
	s.setValue(r, []byte(value))
	return r.ID
}

func (s *Store) setValue(r vfs.Resource, v []byte) {
	s.values[r.ID] = bytes.Clone(v)
	r.Size = int64(len(v))
	r.Modified = time.Now().UTC()
	s.res[key{r.Kind, r.Name}] = r
}

// Secret returns a secret's value and whether it exists.
func (s *Store) Secret(name string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.res[key{vfs.KindSecret, name}]
	return string(s.values[r.ID]), ok
}

// Has reports whether a resource exists.
func (s *Store) Has(kind, name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.res[key{kind, name}]
	return ok
}

// Principal, Decide, Resources, Resource, ReadSecret, WriteSecret,
// CreateResource and DeleteResource implement vfs.Store.

func (s *Store) Principal(uid uint32) (policy.ID, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u, ok := s.users[uid]; ok {
		return u.id, u.name
	}
	return policy.Anonymous, "anonymous"
}

func (s *Store) Decide(p policy.ID, a policy.Action, t policy.Target) policy.Decision {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.decided = append(s.decided, t)
	if s.allowed[grant{p, a, t.ID, t.Via}] || s.allowed[grant{p, a, 0, 0}] {
		return policy.Decision{Allowed: true, By: policy.Binding{Principal: p, Role: policy.RoleProjectsDeveloper, On: s.Project}}
	}
	return policy.Decision{Missing: fmt.Sprintf("%s on %d", a, t.ID)}
}

func (s *Store) Resources(project policy.ID, kind string) []vfs.Resource {
	s.mu.Lock()
	defer s.mu.Unlock()
	if project != s.Project {
		return nil
	}
	var rs []vfs.Resource
	for k, r := range s.res {
		if k.kind == kind {
			rs = append(rs, r)
		}
	}
	slices.SortFunc(rs, func(a, b vfs.Resource) int { return strings.Compare(a.Name, b.Name) })
	return rs
}

func (s *Store) Resource(project policy.ID, kind, name string) (vfs.Resource, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.res[key{kind, name}]
	return r, ok && project == s.Project
}

func (s *Store) ReadSecret(ctx context.Context, p policy.ID, secret policy.ID) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return nil, s.fail
	}
	v, ok := s.values[secret]
	if !ok {
		return nil, fmt.Errorf("secret %d: %w", secret, vfs.ErrNotFound)
	}
	return bytes.Clone(v), nil
}

func (s *Store) WriteSecret(ctx context.Context, p policy.ID, project policy.ID, name string, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	r, ok := s.res[key{vfs.KindSecret, name}]
	switch {
	case !ok:
		s.add(vfs.KindSecret, name, false)
		r = s.res[key{vfs.KindSecret, name}]
	case r.Published:
		return fmt.Errorf("secret %s: %w", name, vfs.ErrReadOnly)
	}
	s.setValue(r, value)
	return nil
}

func (s *Store) CreateResource(ctx context.Context, p policy.ID, project policy.ID, kind, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	if _, ok := s.res[key{kind, name}]; ok {
		return fmt.Errorf("%s %s: %w", kind, name, vfs.ErrExists)
	}
	s.add(kind, name, false)
	return nil
}

func (s *Store) DeleteResource(ctx context.Context, p policy.ID, project policy.ID, kind, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	r, ok := s.res[key{kind, name}]
	switch {
	case !ok:
		return fmt.Errorf("%s %s: %w", kind, name, vfs.ErrNotFound)
	case r.Published:
		return fmt.Errorf("%s %s: %w", kind, name, vfs.ErrReadOnly)
	}
	delete(s.res, key{kind, name})
	delete(s.values, r.ID)
	return nil
}

// Auditor keeps the events it is given.
type Auditor struct {
	mu     sync.Mutex
	events []vfs.Event
}

// Record implements vfs.Auditor.
func (a *Auditor) Record(e vfs.Event) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.events = append(a.events, e)
}

// Take returns the events recorded so far, and forgets them.
func (a *Auditor) Take() []vfs.Event {
	a.mu.Lock()
	defer a.mu.Unlock()
	es := a.events
	a.events = nil
	return es
}
