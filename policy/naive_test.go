package policy

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// This file holds a deliberately naive second implementation of the rules,
// over a plain model of the state, and drives both with random operations:
// Decide must always agree with it.

// model is the state as a list of facts, kept apart from Index.
type model struct {
	ents  map[ID]Entity
	prins map[ID]Principal
	binds map[Binding]bool
	pubs  map[[2]ID]bool // {resource, community}
}

func newModel() *model {
	m := &model{
		ents:  map[ID]Entity{System: {ID: System, Kind: KindSystem, Name: "system"}},
		prins: map[ID]Principal{},
		binds: map[Binding]bool{{Principal: Bootstrap, Role: RoleAdmin, On: System}: true},
		pubs:  map[[2]ID]bool{},
	}
	for _, p := range []Principal{{AllUsers, PrincipalGroup, "allUsers"}, {AllAuthenticatedUsers, PrincipalGroup, "allAuthenticatedUsers"}, {Bootstrap, PrincipalUser, "root"}} {
		m.prins[p.ID] = p
	}
	return m
}

// ancestors lists id and every entity above it.
func (m *model) ancestors(id ID) []ID {
	var out []ID
	for id != 0 {
		out = append(out, id)
		id = m.ents[id].Parent
	}
	return out
}

// above finds the nearest entity of kind k at or above id, or 0.
func (m *model) above(id ID, k Kind) ID {
	for _, a := range m.ancestors(id) {
		if m.ents[a].Kind == k {
			return a
		}
	}
	return 0
}

// naiveCaps expands a role by graph search over the declared inclusions.
func naiveCaps(r Role) map[capMask]bool {
	caps := map[capMask]bool{}
	seen := map[Role]bool{r: true}
	stack := []Role{r}
	for len(stack) > 0 {
		cur := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for i := range capBits {
			if roleCatalog[cur].grants&(1<<i) != 0 {
				caps[1<<i] = true
			}
		}
		for _, inc := range roleCatalog[cur].includes {
			if !seen[inc] {
				seen[inc] = true
				stack = append(stack, inc)
			}
		}
	}
	return caps
}

// has walks every binding: does p hold capability need (capAny: any role)
// on entity at?
func (m *model) has(p ID, at ID, need capMask) bool {
	pr, registered := m.prins[p]
	registered = registered && p != Anonymous
	groups := map[ID]bool{AllUsers: true}
	if registered && pr.Kind != PrincipalGroup {
		groups[AllAuthenticatedUsers] = true
	}
	applies := func(b Binding) bool {
		return (registered && b.Principal == p) || groups[b.Principal]
	}
	onChain := map[ID]bool{}
	for _, a := range m.ancestors(at) {
		onChain[a] = true
	}
	// A user's own bindings in a cloud count only with membership (or
	// ownership), however bound.
	ownCounts := true
	if registered && pr.Kind == PrincipalUser && m.above(at, KindCloud) != 0 {
		ownCounts = false
		for b := range m.binds {
			c := naiveCaps(b.Role)
			if applies(b) && onChain[b.On] && (c[capCloudMember] || c[capCloudOwner]) {
				ownCounts = true
			}
		}
	}
	for b := range m.binds {
		if !applies(b) || !onChain[b.On] || (b.Principal == p && !groups[p] && !ownCounts) {
			continue
		}
		if need == capAny || naiveCaps(b.Role)[need] {
			return true
		}
	}
	return false
}

// naiveDecide restates SPEC.md §3–4 action by action.
func (m *model) naiveDecide(p ID, a Action, t Target) bool {
	e, ok := m.ents[t.ID]
	if !ok {
		return false
	}
	at := func(k ...Kind) bool { return slices.Contains(k, e.Kind) }
	cloudKinds := []Kind{KindCloud, KindFolder, KindServiceAccount, KindFolderResource}
	has := func(need capMask) bool { return m.has(p, t.ID, need) }
	level := func(sys, comm, proj, cloud capMask) capMask {
		switch e.Kind {
		case KindSystem, KindOrg:
			return sys
		case KindCommunity:
			return comm
		case KindProject, KindResource:
			return proj
		}
		return cloud
	}
	switch a {
	case ActCreateOrg, ActManageUsers:
		return at(KindSystem) && has(capAdmin)
	case ActListUsers:
		return at(KindSystem) && has(capView)
	case ActViewOrg:
		return at(KindOrg) && has(capAny)
	case ActEditOrg, ActCreateCloud:
		return at(KindOrg) && has(capEdit)
	case ActCreateCommunity:
		return at(KindOrg) && has(capCommEdit)
	case ActViewCommunity:
		return at(KindCommunity) && has(capCommView)
	case ActCreateProject:
		return at(KindCommunity) && has(capCommDev)
	case ActEditCommunity, ActBindBilling, ActDeleteCommunity:
		return at(KindCommunity) && has(capCommEdit)
	case ActViewProject:
		return at(KindProject) && has(capProjView)
	case ActRunCode, ActCreateResource:
		return at(KindProject) && has(capProjDev)
	case ActEditProject, ActDeleteProject:
		return at(KindProject) && has(capProjEdit)
	case ActViewResource, ActUseResource:
		if !at(KindResource) {
			return false
		}
		need := capProjView
		if a == ActUseResource {
			need = capProjDev
		}
		if t.Via == 0 || t.Via == e.Parent {
			return has(need)
		}
		q, ok := m.ents[t.Via]
		return ok && q.Kind == KindProject && m.above(q.ID, KindOrg) == m.above(e.ID, KindOrg) &&
			m.pubs[[2]ID{e.ID, q.Parent}] && m.has(p, q.ID, need)
	case ActEditResource, ActDeleteResource:
		return at(KindResource) && (t.Via == 0 || t.Via == e.Parent) && has(capProjDev)
	case ActPublishResource, ActUnpublishResource:
		c, ok := m.ents[t.Via]
		return at(KindResource) && ok && c.Kind == KindCommunity &&
			m.above(c.ID, KindOrg) == m.above(e.ID, KindOrg) &&
			m.has(p, e.Parent, capProjEdit) && m.has(p, c.ID, capCommDev)
	case ActViewCloudEntity:
		return at(cloudKinds...) && has(capCloudView)
	case ActEditCloudEntity, ActDeleteCloudEntity:
		return at(cloudKinds...) && has(capCloudEdit)
	case ActManageKeys:
		return at(KindServiceAccount) && has(capCloudEdit)
	case ActCreateFolder:
		return at(KindCloud) && has(capCloudEdit)
	case ActGrant, ActRevoke:
		if at(KindFolderResource) {
			return false
		}
		if t.Role == RoleCloudsOwner {
			return has(capCloudOwner)
		}
		return has(level(capAdmin, capCommAdmin, capProjAdmin, capCloudAdmin))
	case ActViewAccess:
		return has(level(capView, capCommView, capProjView, capCloudView))
	}
	return false
}

// ownersLeft reports whether every cloud keeps an owner once removed is gone.
func (m *model) ownersLeft(removed []Binding) bool {
	for c, e := range m.ents {
		if e.Kind != KindCloud {
			continue
		}
		before, lost := 0, 0
		for b := range m.binds {
			if b.Role == RoleCloudsOwner && (b.On == c || b.On == e.Parent) {
				before++
				if slices.Contains(removed, b) {
					lost++
				}
			}
		}
		if lost > 0 && before-lost < 1 {
			return false
		}
	}
	return true
}

func (m *model) bindingsOf(p ID) []Binding {
	var bs []Binding
	for b := range m.binds {
		if b.Principal == p {
			bs = append(bs, b)
		}
	}
	return bs
}

func (m *model) dropPrincipal(p ID) {
	for _, b := range m.bindingsOf(p) {
		delete(m.binds, b)
	}
	delete(m.prins, p)
}

func sortedKeys[K cmp.Ordered, V any](mp map[K]V) []K {
	ks := make([]K, 0, len(mp))
	for k := range mp {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// runner applies a byte string as a sequence of operations to an Index and
// the model, checking after each that they agree.
type runner struct {
	t    testing.TB
	ix   *Index
	m    *model
	data []byte
	// monotone: after a successful Grant, re-check that decisions taken
	// before it still allow (a binding never removes a permission).
	monotone bool
}

func (r *runner) next() int {
	if len(r.data) == 0 {
		return 0
	}
	b := r.data[0]
	r.data = r.data[1:]
	return int(b)
}

const (
	entityPool = 60
	userBase   = ID(300)
	userPool   = 6
)

func (r *runner) pickEntity() ID {
	ents := sortedKeys(r.m.ents)
	n := r.next()
	if n%16 == 15 {
		return FirstAssigned + ID(n%entityPool) // maybe absent
	}
	return ents[n%len(ents)]
}

func (r *runner) pickPrincipal() ID {
	pool := []ID{Anonymous, AllUsers, AllAuthenticatedUsers, Bootstrap, 9999}
	for _, p := range sortedKeys(r.m.prins) {
		if p >= FirstAssigned {
			pool = append(pool, p)
		}
	}
	return pool[r.next()%len(pool)]
}

var childKinds = map[Kind][]Kind{
	KindSystem:    {KindOrg},
	KindOrg:       {KindCommunity, KindCloud},
	KindCommunity: {KindProject},
	KindProject:   {KindResource},
	KindCloud:     {KindFolder},
	KindFolder:    {KindServiceAccount, KindFolderResource},
}

func (r *runner) check(what string, err error, want bool) {
	r.t.Helper()
	if (err == nil) != want {
		r.t.Fatalf("%s: error %v, model expected success=%v", what, err, want)
	}
}

func (r *runner) run() {
	for len(r.data) > 0 {
		switch op := r.next() % 16; op {
		case 0, 1, 2:
			r.putEntity()
		case 3:
			r.removeEntity()
		case 4:
			id := userBase + ID(r.next()%userPool)
			p := Principal{ID: id, Kind: PrincipalUser, Name: fmt.Sprintf("u%d", id)}
			_, isEnt := r.m.ents[id]
			old, exists := r.m.prins[id]
			err := r.ix.PutPrincipal(p)
			r.check("PutPrincipal user", err, !isEnt && (!exists || old.Kind == PrincipalUser))
			if err == nil {
				r.m.prins[id] = p
			}
		case 5:
			id := r.pickEntity()
			p := Principal{ID: id, Kind: PrincipalServiceAccount, Name: fmt.Sprintf("sa%d", id)}
			err := r.ix.PutPrincipal(p)
			r.check("PutPrincipal service account", err, r.m.ents[id].Kind == KindServiceAccount)
			if err == nil {
				r.m.prins[id] = p
			}
		case 6:
			p := r.pickPrincipal()
			_, exists := r.m.prins[p]
			err := r.ix.RemovePrincipal(p)
			r.check("RemovePrincipal", err, p >= FirstAssigned && exists && r.m.ownersLeft(r.m.bindingsOf(p)))
			if err == nil {
				r.m.dropPrincipal(p)
			}
		case 7, 8, 9:
			b := Binding{Principal: r.pickPrincipal(), On: r.pickEntity()}
			b.Role = r.pickRole(r.m.ents[b.On].Kind)
			r.grant(b)
		case 10:
			r.revoke()
		case 11, 12:
			res, com := r.pickEntity(), r.pickEntity()
			re, ce := r.m.ents[res], r.m.ents[com]
			valid := re.Kind == KindResource && ce.Kind == KindCommunity && r.m.above(res, KindOrg) == r.m.above(com, KindOrg)
			key := [2]ID{res, com}
			if op == 11 {
				r.check("Publish", r.ix.Publish(res, com), valid)
				if valid {
					r.m.pubs[key] = true
				}
			} else {
				r.check("Unpublish", r.ix.Unpublish(res, com), valid && r.m.pubs[key])
				delete(r.m.pubs, key)
			}
		default:
			r.decide(r.query())
		}
	}
	r.compareState()
}

func (r *runner) putEntity() {
	parent := r.m.ents[r.pickEntity()]
	kinds := childKinds[parent.Kind]
	k := Kind(r.next()%10 + 1) // sometimes wrong on purpose
	if n := r.next(); len(kinds) > 0 && n%8 != 0 {
		k = kinds[n%len(kinds)]
	}
	id := FirstAssigned + ID(r.next()%entityPool)
	e := Entity{ID: id, Kind: k, Parent: parent.ID, Name: fmt.Sprintf("e%d", r.next())}
	old, exists := r.m.ents[id]
	_, isPrincipal := r.m.prins[id]
	want := (exists && old.Kind == k && old.Parent == parent.ID) ||
		(!exists && !isPrincipal && k.valid() && k != KindSystem && parentKind[k] == parent.Kind)
	r.check("PutEntity", r.ix.PutEntity(e), want)
	if want {
		r.m.ents[id] = e
	}
}

func (r *runner) removeEntity() {
	id := r.pickEntity()
	_, exists := r.m.ents[id]
	children := false
	for _, e := range r.m.ents {
		children = children || (e.Parent == id && e.ID != System)
	}
	_, isPrincipal := r.m.prins[id]
	want := exists && id != System && !children && (!isPrincipal || r.m.ownersLeft(r.m.bindingsOf(id)))
	r.check("RemoveEntity", r.ix.RemoveEntity(id), want)
	if !want {
		return
	}
	if isPrincipal {
		r.m.dropPrincipal(id)
	}
	for b := range r.m.binds {
		if b.On == id {
			delete(r.m.binds, b)
		}
	}
	for k := range r.m.pubs {
		if k[0] == id || k[1] == id {
			delete(r.m.pubs, k)
		}
	}
	delete(r.m.ents, id)
}

func (r *runner) grant(b Binding) {
	e, entOK := r.m.ents[b.On]
	p, prOK := r.m.prins[b.Principal]
	want := b.Role.valid() && entOK && prOK && b.Principal != Anonymous && e.Kind != KindFolderResource &&
		roleCatalog[b.Role].bindable.has(e.Kind)
	if want && p.Kind == PrincipalServiceAccount {
		org := r.m.above(b.On, KindOrg)
		want = org != 0 && org == r.m.above(b.Principal, KindOrg)
	}
	r.check("CheckGrant", r.ix.CheckGrant(b), want)
	var before []query
	if r.monotone && want && !r.m.binds[b] {
		for range 20 {
			if q := r.query(); r.ix.Decide(q.p, q.a, q.t).Allowed {
				before = append(before, q)
			}
		}
	}
	r.check("Grant", r.ix.Grant(b), want)
	if want {
		r.m.binds[b] = true
	}
	for _, q := range before {
		if !r.ix.Decide(q.p, q.a, q.t).Allowed {
			r.t.Fatalf("granting %+v took away %s on %+v from %d", b, q.a, q.t, q.p)
		}
	}
}

func (r *runner) revoke() {
	var b Binding
	if bs := sortedBindings(r.m.binds); r.next()%4 != 0 && len(bs) > 0 {
		b = bs[r.next()%len(bs)]
	} else {
		b = Binding{Principal: r.pickPrincipal(), Role: Role(r.next() % int(roleCount)), On: r.pickEntity()}
	}
	want := r.m.binds[b] && r.m.ownersLeft([]Binding{b})
	r.check("CheckRevoke", r.ix.CheckRevoke(b), want)
	r.check("Revoke", r.ix.Revoke(b), want)
	if want {
		delete(r.m.binds, b)
	}
}

type query struct {
	p ID
	a Action
	t Target
}

// pickRole mostly picks a role bindable on kind k, so histories get
// bindings; sometimes any value, valid or not.
func (r *runner) pickRole(k Kind) Role {
	var fit []Role
	for _, role := range Roles() {
		if role.BindableOn(k) {
			fit = append(fit, role)
		}
	}
	if n := r.next(); n%4 != 0 && len(fit) > 0 {
		return fit[n%len(fit)]
	}
	return Role(r.next() % int(roleCount+1))
}

// query mostly asks about an action that applies to the target's kind.
func (r *runner) query() query {
	q := query{p: r.pickPrincipal(), t: Target{ID: r.pickEntity()}}
	var fit []Action
	for _, a := range Actions() {
		if a.AppliesTo(r.m.ents[q.t.ID].Kind) {
			fit = append(fit, a)
		}
	}
	if n := r.next(); n%4 != 0 && len(fit) > 0 {
		q.a = fit[n%len(fit)]
	} else {
		q.a = Action(r.next() % int(actCount+1))
	}
	if r.next()%2 == 0 {
		q.t.Via = r.pickEntity()
	}
	q.t.Role = Role(r.next() % int(roleCount))
	return q
}

func (r *runner) decide(q query) {
	r.t.Helper()
	d := r.ix.Decide(q.p, q.a, q.t)
	want := r.m.naiveDecide(q.p, q.a, q.t)
	if d.Allowed != want {
		r.t.Fatalf("Decide(%d, %s, %+v) = %+v, naive says %v\n%s", q.p, q.a, q.t, d, want, r.ix.Explain(q.p, q.a, q.t))
	}
	if d.Allowed && !r.m.binds[d.By] {
		r.t.Fatalf("Decide(%d, %s, %+v): By %+v is not a binding", q.p, q.a, q.t, d.By)
	}
	if !d.Allowed && d.Missing == "" {
		r.t.Fatalf("Decide(%d, %s, %+v): denied without Missing", q.p, q.a, q.t)
	}
	if e := r.ix.Explain(q.p, q.a, q.t); e.Allowed != d.Allowed {
		r.t.Fatalf("Explain disagrees with Decide on %d %s %+v:\n%s", q.p, q.a, q.t, e)
	}
}

func sortedBindings(set map[Binding]bool) []Binding {
	var bs []Binding
	for b := range set {
		bs = append(bs, b)
	}
	slices.SortFunc(bs, func(a, b Binding) int {
		return cmp.Or(cmp.Compare(a.On, b.On), cmp.Compare(a.Principal, b.Principal), cmp.Compare(a.Role, b.Role))
	})
	return bs
}

// compareState checks the listings against the model.
func (r *runner) compareState() {
	r.t.Helper()
	var got []Binding
	for _, e := range sortedKeys(r.m.ents) {
		got = append(got, r.ix.Bindings(e)...)
		if r.m.ents[e].Kind == KindCommunity {
			var want []ID
			for k := range r.m.pubs {
				if k[1] == e {
					want = append(want, k[0])
				}
			}
			slices.Sort(want)
			if pub := r.ix.PublishedTo(e); !slices.Equal(pub, want) {
				r.t.Fatalf("PublishedTo(%d) = %v, want %v", e, pub, want)
			}
		}
	}
	slices.SortFunc(got, func(a, b Binding) int {
		return cmp.Or(cmp.Compare(a.On, b.On), cmp.Compare(a.Principal, b.Principal), cmp.Compare(a.Role, b.Role))
	})
	if want := sortedBindings(r.m.binds); !slices.Equal(got, want) {
		r.t.Fatalf("bindings\n got %v\nwant %v", got, want)
	}
}

func randomOps(seed uint64, n int) []byte {
	rnd := rand.New(rand.NewPCG(seed, 0x5eed))
	data := make([]byte, n)
	for i := range data {
		data[i] = byte(rnd.UintN(256))
	}
	return data
}

// TestAgreesWithNaive: a few hundred seeded random histories.
func TestAgreesWithNaive(t *testing.T) {
	cases := 300
	if testing.Short() {
		cases = 50
	}
	for seed := range uint64(cases) {
		r := &runner{t: t, ix: NewIndex(), m: newModel(), data: randomOps(seed, 4000), monotone: true}
		r.run()
	}
}

// FuzzDecide: any sequence of operations leaves Index and model in
// agreement and never panics. The seed corpus is in testdata/fuzz.
func FuzzDecide(f *testing.F) {
	for seed := range uint64(4) {
		f.Add(randomOps(1000+seed, 400))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 4096 {
			t.Skip("long inputs only repeat what short ones find")
		}
		r := &runner{t: t, ix: NewIndex(), m: newModel(), data: data}
		r.run()
	})
}
