package policy

import (
	"errors"
	"testing"
)

// fixture is a small world with names, so tests read like the seeds.
type fixture struct {
	t  *testing.T
	ix *Index
	id map[string]ID
	// next is the next free ID for principals created by user.
	next ID
}

// newFixture builds:
//
//	acme ─┬─ cats ── p1 ── secrets/TOKEN, datasets/birds
//	      ├─ dogs ── p2
//	      └─ mycloud ── robots ── alice, bob (service accounts), vm (folder resource)
//	other ── oc ── op ── ores
//	         othercloud ── otherfolder
func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, ix: NewIndex(), id: map[string]ID{"system": System}, next: 1000}
	for _, e := range []struct {
		name, parent string
		kind         Kind
	}{
		{"acme", "system", KindOrg},
		{"cats", "acme", KindCommunity},
		{"p1", "cats", KindProject},
		{"secrets/TOKEN", "p1", KindResource},
		{"datasets/birds", "p1", KindResource},
		{"dogs", "acme", KindCommunity},
		{"p2", "dogs", KindProject},
		{"mycloud", "acme", KindCloud},
		{"robots", "mycloud", KindFolder},
		{"alice", "robots", KindServiceAccount},
		{"bob", "robots", KindServiceAccount},
		{"vm", "robots", KindFolderResource},
		{"other", "system", KindOrg},
		{"oc", "other", KindCommunity},
		{"op", "oc", KindProject},
		{"ores", "op", KindResource},
		{"othercloud", "other", KindCloud},
		{"otherfolder", "othercloud", KindFolder},
	} {
		f.entity(e.name, e.kind, e.parent)
	}
	for _, sa := range []string{"alice", "bob"} {
		f.must(f.ix.PutPrincipal(Principal{ID: f.id[sa], Kind: PrincipalServiceAccount, Name: sa}))
	}
	return f
}

func (f *fixture) entity(name string, k Kind, parent string) ID {
	f.t.Helper()
	id := FirstAssigned + ID(len(f.id))
	f.must(f.ix.PutEntity(Entity{ID: id, Kind: k, Parent: f.id[parent], Name: name}))
	f.id[name] = id
	return id
}

// user registers a user principal.
func (f *fixture) user(name string) ID {
	f.t.Helper()
	f.next++
	f.must(f.ix.PutPrincipal(Principal{ID: f.next, Kind: PrincipalUser, Name: name}))
	f.id[name] = f.next
	return f.next
}

func (f *fixture) grant(p ID, r Role, on string) {
	f.t.Helper()
	f.must(f.ix.Grant(Binding{Principal: p, Role: r, On: f.at(on)}))
}

func (f *fixture) at(name string) ID {
	f.t.Helper()
	id, ok := f.id[name]
	if !ok {
		f.t.Fatalf("fixture has no %q", name)
	}
	return id
}

func (f *fixture) must(err error) {
	f.t.Helper()
	if err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) decide(p ID, a Action, target, via string, role Role) Decision {
	f.t.Helper()
	t := Target{ID: f.at(target), Role: role}
	if via != "" {
		t.Via = f.at(via)
	}
	return f.ix.Decide(p, a, t)
}

// allow and deny assert a decision and, on failure, print the explanation.
func (f *fixture) allow(p ID, a Action, target, via string) Decision {
	f.t.Helper()
	d := f.decide(p, a, target, via, RoleNone)
	if !d.Allowed {
		f.t.Errorf("%s on %s via %q: denied, want allowed\n%s", a, target, via, f.explain(p, a, target, via))
	}
	return d
}

func (f *fixture) deny(p ID, a Action, target, via string) Decision {
	f.t.Helper()
	d := f.decide(p, a, target, via, RoleNone)
	if d.Allowed {
		f.t.Errorf("%s on %s via %q: allowed by %+v, want denied\n%s", a, target, via, d.By, f.explain(p, a, target, via))
	}
	if !d.Allowed && d.Missing == "" {
		f.t.Errorf("%s on %s: denied without saying what is missing", a, target)
	}
	return d
}

func (f *fixture) explain(p ID, a Action, target, via string) string {
	t := Target{ID: f.id[target]}
	if via != "" {
		t.Via = f.id[via]
	}
	return f.ix.Explain(p, a, t).String()
}

func wantErr(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error %v, want %v", err, want)
	}
}
