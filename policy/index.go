package policy

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"sync"
)

// Index is the in-memory form of the hierarchy, the principals, the bindings
// and the publications, kept so that a decision walks only the target's
// ancestors. The state machine applies every change to it in log order; it
// is safe for concurrent use (decisions share a read lock).
type Index struct {
	mu         sync.RWMutex
	nodes      map[ID]*node
	principals map[ID]*principal
}

// node is one entity. Pointers to the parent, the organization and the cloud
// are resolved once at insertion so decisions and org checks never look
// them up again.
type node struct {
	id       ID
	kind     Kind
	name     string
	parent   *node
	org      *node // the organization it belongs to (itself for one); nil for System
	cloud    *node // the cloud it is in (itself for one); nil outside the cloud tree
	children int
	// grants maps a principal to what it holds on this entity; nil until the
	// first binding, since most resources never get one.
	grants map[ID]held
	// pubs: on a resource, the communities it is published to; on a
	// community, the resources published to it.
	pubs map[ID]struct{}
	// clouds: on an organization, its clouds, because an owner bound on the
	// organization counts as an owner of each of them.
	clouds map[ID]*node
}

type principal struct {
	Principal
	on map[ID]struct{} // entities it holds at least one role on
}

// NewIndex returns an index holding only what every node agrees on without
// a log entry: System, the two system groups, and Bootstrap with admin on
// System.
func NewIndex() *Index {
	ix := &Index{}
	ix.reset()
	return ix
}

// Reset brings the index back to the NewIndex state (before a snapshot is
// restored into it).
func (ix *Index) Reset() {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.reset()
}

func (ix *Index) reset() {
	ix.nodes = map[ID]*node{System: {id: System, kind: KindSystem, name: "system"}}
	ix.principals = map[ID]*principal{}
	for _, p := range []Principal{
		{ID: AllUsers, Kind: PrincipalGroup, Name: "allUsers"},
		{ID: AllAuthenticatedUsers, Kind: PrincipalGroup, Name: "allAuthenticatedUsers"},
		{ID: Bootstrap, Kind: PrincipalUser, Name: "root"},
	} {
		ix.principals[p.ID] = &principal{Principal: p}
	}
	ix.grant(ix.nodes[System], ix.principals[Bootstrap], RoleAdmin)
}

func fail(err error, format string, args ...any) error {
	return &ruleError{err: err, msg: fmt.Sprintf(format, args...)}
}

// describe names an entity for messages: `cloud "mycloud"`.
func (n *node) describe() string { return fmt.Sprintf("%s %q", n.kind.noun(), n.name) }

func (p *principal) describe() string { return fmt.Sprintf("%s %q", p.Kind, p.Name) }

func (ix *Index) describePrincipal(id ID) string {
	if p := ix.principals[id]; p != nil {
		return p.describe()
	}
	return fmt.Sprintf("principal %d", id)
}

func (n *node) parentID() ID {
	if n.parent == nil {
		return 0
	}
	return n.parent.id
}

// PutEntity adds an entity under an existing parent of the kind it must nest
// in, or renames an existing one. Entities never change kind or parent.
// System's Parent is 0.
func (ix *Index) PutEntity(e Entity) error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if n := ix.nodes[e.ID]; n != nil {
		if n.kind != e.Kind || n.parentID() != e.Parent {
			return fail(ErrBadNesting, "cannot change %s (id %d) into a %s under %d: entities never change kind or move",
				n.describe(), e.ID, e.Kind, e.Parent)
		}
		n.name = e.Name
		return nil
	}
	if e.ID < FirstAssigned {
		return fail(ErrReserved, "cannot create entity %d: ids below %d are reserved", e.ID, FirstAssigned)
	}
	if !e.Kind.valid() || e.Kind == KindSystem {
		return fail(ErrWrongKind, "cannot create %q as a %s: only organizations and what they contain can be created", e.Name, e.Kind)
	}
	if p := ix.principals[e.ID]; p != nil {
		return fail(ErrIDInUse, "cannot create %s %q: id %d is %s", e.Kind.noun(), e.Name, e.ID, p.describe())
	}
	parent := ix.nodes[e.Parent]
	if parent == nil {
		return fail(ErrNoSuchEntity, "cannot create %s %q: its parent %d does not exist", e.Kind.noun(), e.Name, e.Parent)
	}
	if want := parentKind[e.Kind]; parent.kind != want {
		return fail(ErrBadNesting, "cannot create %s %q in %s: a %s must be inside a %s",
			e.Kind.noun(), e.Name, parent.describe(), e.Kind.noun(), want.noun())
	}
	n := &node{id: e.ID, kind: e.Kind, name: e.Name, parent: parent, org: parent.org, cloud: parent.cloud}
	switch e.Kind {
	case KindOrg:
		n.org = n
	case KindCloud:
		n.cloud = n
		if n.org.clouds == nil {
			n.org.clouds = map[ID]*node{}
		}
		n.org.clouds[n.id] = n
	}
	parent.children++
	ix.nodes[n.id] = n
	return nil
}

// RemoveEntity removes a childless entity with its bindings and
// publications. Removing a service account also removes its principal and
// everything that principal holds (the two share the ID), so it is refused
// if that would leave a cloud without an owner.
func (ix *Index) RemoveEntity(id ID) error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	n := ix.nodes[id]
	switch {
	case n == nil:
		return fail(ErrNoSuchEntity, "cannot remove entity %d: it does not exist", id)
	case n.kind == KindSystem:
		return fail(ErrReserved, "cannot remove the system: it is the root of every organization")
	case n.children > 0:
		return fail(ErrHasChildren, "cannot remove %s: it still contains %d entities; remove them first", n.describe(), n.children)
	}
	if p := ix.principals[id]; p != nil {
		if c := ix.ownerLoss(ix.bindingsOf(p)); c != nil {
			return fail(ErrLastOwner, "cannot remove %s: it is the last owner of %s, and a cloud must keep at least one owner",
				n.describe(), c.describe())
		}
		ix.dropPrincipal(p)
	}
	for pid := range n.grants {
		delete(ix.principals[pid].on, id)
	}
	for other := range n.pubs {
		delete(ix.nodes[other].pubs, id)
	}
	if n.kind == KindCloud {
		delete(n.org.clouds, id)
	}
	n.parent.children--
	delete(ix.nodes, id)
	return nil
}

// PutPrincipal adds a principal or renames an existing one. A service
// account's principal takes the ID of its (existing) service-account entity;
// a user's ID must not name an entity. The system groups and Bootstrap
// exist from the start and can only be renamed.
func (ix *Index) PutPrincipal(p Principal) error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ex := ix.principals[p.ID]; ex != nil {
		if ex.Kind != p.Kind {
			return fail(ErrIDInUse, "cannot make %s a %s: principals never change kind", ex.describe(), p.Kind)
		}
		ex.Name = p.Name
		return nil
	}
	if p.ID < FirstAssigned {
		return fail(ErrReserved, "cannot create principal %d: ids below %d are reserved", p.ID, FirstAssigned)
	}
	n := ix.nodes[p.ID]
	switch p.Kind {
	case PrincipalUser:
		if n != nil {
			return fail(ErrIDInUse, "cannot create user %q: id %d is %s", p.Name, p.ID, n.describe())
		}
	case PrincipalServiceAccount:
		if n == nil {
			return fail(ErrNoSuchEntity, "cannot create service account %q: its service-account entity %d must exist first", p.Name, p.ID)
		}
		if n.kind != KindServiceAccount {
			return fail(ErrWrongKind, "cannot create service account %q: id %d is %s", p.Name, p.ID, n.describe())
		}
	case PrincipalGroup:
		return fail(ErrReserved, "cannot create group %q: the only groups are allUsers and allAuthenticatedUsers", p.Name)
	default:
		return fail(ErrWrongKind, "cannot create principal %q: %s is not a kind of principal", p.Name, p.Kind)
	}
	ix.principals[p.ID] = &principal{Principal: p}
	return nil
}

// RemovePrincipal removes a principal and its bindings. It is refused for
// the well-known principals and when the principal is the last owner of a
// cloud.
func (ix *Index) RemovePrincipal(id ID) error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	p := ix.principals[id]
	switch {
	case id < FirstAssigned:
		return fail(ErrReserved, "cannot remove principal %d: the system groups and the bootstrap administrator are permanent", id)
	case p == nil:
		return fail(ErrNoSuchPrincipal, "cannot remove principal %d: it does not exist", id)
	}
	if c := ix.ownerLoss(ix.bindingsOf(p)); c != nil {
		return fail(ErrLastOwner, "cannot remove %s: they are the last owner of %s, and a cloud must keep at least one owner",
			p.describe(), c.describe())
	}
	ix.dropPrincipal(p)
	return nil
}

func (ix *Index) dropPrincipal(p *principal) {
	for on := range p.on {
		n := ix.nodes[on]
		delete(n.grants, p.ID)
	}
	delete(ix.principals, p.ID)
}

// ownerCount counts the owner bindings that make someone an owner of cloud
// c: those on the cloud and those on its organization.
func ownerCount(c *node) int {
	count := 0
	for _, n := range []*node{c, c.org} {
		for _, h := range n.grants {
			if h.has(RoleCloudsOwner) {
				count++
			}
		}
	}
	return count
}

// ownerLoss returns a cloud that removing the bindings would leave without
// an owner (the lowest ID, so messages are stable), or nil.
func (ix *Index) ownerLoss(removed []Binding) *node {
	if !slices.ContainsFunc(removed, func(b Binding) bool { return b.Role == RoleCloudsOwner }) {
		return nil
	}
	lost := map[*node]int{}
	for _, b := range removed {
		if b.Role != RoleCloudsOwner {
			continue
		}
		switch n := ix.nodes[b.On]; n.kind {
		case KindCloud:
			lost[n]++
		case KindOrg:
			for _, c := range n.clouds {
				lost[c]++
			}
		}
	}
	var worst *node
	for c, k := range lost {
		if ownerCount(c)-k < 1 && (worst == nil || c.id < worst.id) {
			worst = c
		}
	}
	return worst
}

// CheckGrant reports whether Grant(b) would be accepted, changing nothing.
// It validates the binding only; whether the caller may grant it is
// Decide(caller, ActGrant, Target{ID: b.On, Role: b.Role}).
func (ix *Index) CheckGrant(b Binding) error {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	_, _, err := ix.checkGrant(b)
	return err
}

// Grant adds the binding; granting a binding that exists changes nothing.
func (ix *Index) Grant(b Binding) error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	n, p, err := ix.checkGrant(b)
	if err != nil {
		return err
	}
	ix.grant(n, p, b.Role)
	return nil
}

func (ix *Index) checkGrant(b Binding) (*node, *principal, error) {
	if !b.Role.valid() {
		return nil, nil, fail(ErrUnknownRole, "cannot grant %s: not a role of the catalog", b.Role)
	}
	n := ix.nodes[b.On]
	if n == nil {
		return nil, nil, fail(ErrNoSuchEntity, "cannot grant %s on entity %d: it does not exist", b.Role, b.On)
	}
	p := ix.principals[b.Principal]
	if p == nil {
		return nil, nil, fail(ErrNoSuchPrincipal, "cannot grant %s on %s to principal %d: it does not exist", b.Role, n.describe(), b.Principal)
	}
	if n.kind == KindFolderResource {
		return nil, nil, fail(ErrNotBindable, "cannot grant %s on %s: a folder resource accepts no bindings; it inherits from its folder, then the cloud",
			b.Role, n.describe())
	}
	if !b.Role.BindableOn(n.kind) {
		return nil, nil, fail(ErrRoleNotBindable, "cannot grant %s on %s: that role can be bound only on %s",
			b.Role, n.describe(), roleCatalog[b.Role].bindable)
	}
	if p.Kind == PrincipalServiceAccount {
		if sa := ix.nodes[p.ID]; n.org == nil || n.org != sa.org {
			return nil, nil, fail(ErrCrossOrg, "cannot grant %s on %s to %s of %s: nothing crosses organizations",
				b.Role, n.describe(), p.describe(), sa.org.describe())
		}
	}
	return n, p, nil
}

func (ix *Index) grant(n *node, p *principal, r Role) {
	if n.grants == nil {
		n.grants = map[ID]held{}
	}
	n.grants[p.ID] = n.grants[p.ID].with(r)
	if p.on == nil {
		p.on = map[ID]struct{}{}
	}
	p.on[n.id] = struct{}{}
}

// CheckRevoke reports whether Revoke(b) would be accepted, changing nothing.
func (ix *Index) CheckRevoke(b Binding) error {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	_, err := ix.checkRevoke(b)
	return err
}

// Revoke removes the binding. It must exist, and a cloud must keep at least
// one owner: the sole owner cannot revoke their own owner role.
func (ix *Index) Revoke(b Binding) error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	n, err := ix.checkRevoke(b)
	if err != nil {
		return err
	}
	h := n.grants[b.Principal].without(b.Role)
	if h.roles == 0 {
		delete(n.grants, b.Principal)
		delete(ix.principals[b.Principal].on, n.id)
	} else {
		n.grants[b.Principal] = h
	}
	return nil
}

func (ix *Index) checkRevoke(b Binding) (*node, error) {
	if !b.Role.valid() {
		return nil, fail(ErrUnknownRole, "cannot revoke %s: not a role of the catalog", b.Role)
	}
	n := ix.nodes[b.On]
	if n == nil {
		return nil, fail(ErrNoSuchEntity, "cannot revoke %s on entity %d: it does not exist", b.Role, b.On)
	}
	if !n.grants[b.Principal].has(b.Role) {
		return nil, fail(ErrNoSuchBinding, "cannot revoke %s from %s on %s: there is no such binding",
			b.Role, ix.describePrincipal(b.Principal), n.describe())
	}
	if c := ix.ownerLoss([]Binding{b}); c != nil {
		return nil, fail(ErrLastOwner, "cannot revoke %s from %s on %s: %s would have no owner left, and a cloud must keep at least one owner",
			b.Role, ix.describePrincipal(b.Principal), n.describe(), c.describe())
	}
	return n, nil
}

// Publish shares a resource with a community of the same organization (its
// own or another); publishing again changes nothing. Whether the caller may
// is Decide(caller, ActPublishResource, Target{ID: resource, Via: community}).
func (ix *Index) Publish(resource, community ID) error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	r, c, err := ix.checkPublication("publish", resource, community)
	if err != nil {
		return err
	}
	if r.pubs == nil {
		r.pubs = map[ID]struct{}{}
	}
	if c.pubs == nil {
		c.pubs = map[ID]struct{}{}
	}
	r.pubs[c.id] = struct{}{}
	c.pubs[r.id] = struct{}{}
	return nil
}

// Unpublish withdraws a resource from a community it is published to.
func (ix *Index) Unpublish(resource, community ID) error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	r, c, err := ix.checkPublication("unpublish", resource, community)
	if err != nil {
		return err
	}
	if _, ok := r.pubs[c.id]; !ok {
		return fail(ErrNotPublished, "cannot unpublish %s from %s: it is not published there", r.describe(), c.describe())
	}
	delete(r.pubs, c.id)
	delete(c.pubs, r.id)
	return nil
}

func (ix *Index) checkPublication(verb string, resource, community ID) (r, c *node, err error) {
	r, c = ix.nodes[resource], ix.nodes[community]
	switch {
	case r == nil:
		return nil, nil, fail(ErrNoSuchEntity, "cannot %s entity %d: it does not exist", verb, resource)
	case r.kind != KindResource:
		return nil, nil, fail(ErrWrongKind, "cannot %s %s: only resources of a project are published", verb, r.describe())
	case c == nil:
		return nil, nil, fail(ErrNoSuchEntity, "cannot %s %s to entity %d: it does not exist", verb, r.describe(), community)
	case c.kind != KindCommunity:
		return nil, nil, fail(ErrWrongKind, "cannot %s %s to %s: resources are published to communities", verb, r.describe(), c.describe())
	case r.org != c.org:
		return nil, nil, fail(ErrCrossOrg, "cannot %s %s of %s to %s of %s: nothing crosses organizations",
			verb, r.describe(), r.org.describe(), c.describe(), c.org.describe())
	}
	return r, c, nil
}

// PublishedTo returns the resources published to a community, sorted.
func (ix *Index) PublishedTo(community ID) []ID { return ix.pubsOf(community, KindCommunity) }

// Publications returns the communities a resource is published to, sorted.
func (ix *Index) Publications(resource ID) []ID { return ix.pubsOf(resource, KindResource) }

func (ix *Index) pubsOf(id ID, k Kind) []ID {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	n := ix.nodes[id]
	if n == nil || n.kind != k {
		return nil
	}
	return slices.Sorted(maps.Keys(n.pubs))
}

// Bindings returns the bindings on an entity (not inherited ones), sorted by
// principal, then role.
func (ix *Index) Bindings(on ID) []Binding {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	n := ix.nodes[on]
	if n == nil {
		return nil
	}
	var bs []Binding
	for p, h := range n.grants {
		bs = appendHeld(bs, p, on, h)
	}
	slices.SortFunc(bs, func(a, b Binding) int {
		return cmp.Or(cmp.Compare(a.Principal, b.Principal), cmp.Compare(a.Role, b.Role))
	})
	return bs
}

// BindingsOf returns a principal's bindings, sorted by entity, then role.
func (ix *Index) BindingsOf(p ID) []Binding {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	pr := ix.principals[p]
	if pr == nil {
		return nil
	}
	return ix.bindingsOf(pr)
}

func (ix *Index) bindingsOf(p *principal) []Binding {
	var bs []Binding
	for on := range p.on {
		bs = appendHeld(bs, p.ID, on, ix.nodes[on].grants[p.ID])
	}
	slices.SortFunc(bs, func(a, b Binding) int { return cmp.Or(cmp.Compare(a.On, b.On), cmp.Compare(a.Role, b.Role)) })
	return bs
}

func appendHeld(bs []Binding, p, on ID, h held) []Binding {
	for r := Role(1); r < roleCount; r++ {
		if h.has(r) {
			bs = append(bs, Binding{Principal: p, Role: r, On: on})
		}
	}
	return bs
}
