package policy

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// The large organization of SPEC.md §12: 1,000 communities × 10 projects ×
// 100 resources and 100,000 bindings, plus a cloud of 100 folders × 10
// service accounts. Built once for all benchmarks.
const (
	benchCommunities = 1000
	benchProjects    = 10
	benchResources   = 100
	benchUsers       = 10000
	benchFolders     = 100
	benchAccounts    = 10
)

type bigOrg struct {
	ix        *Index
	org       ID
	projects  []ID // all of them, community-major
	resources []ID // the first resource of each project
	accounts  []ID
	cloud     ID
	user0     ID
	bindings  int
}

var (
	bigOnce sync.Once
	big     bigOrg
)

func buildBigOrg(tb testing.TB) *bigOrg {
	bigOnce.Do(func() {
		start := time.Now()
		ix := NewIndex()
		next := FirstAssigned
		id := func() ID { next++; return next }
		put := func(k Kind, parent ID, name string) ID {
			e := Entity{ID: id(), Kind: k, Parent: parent, Name: name}
			if err := ix.PutEntity(e); err != nil {
				panic(err)
			}
			return e.ID
		}
		names := make([]string, benchCommunities)
		for i := range names {
			names[i] = fmt.Sprintf("n%d", i)
		}
		b := &big
		b.ix = ix
		b.org = put(KindOrg, System, "acme")
		b.user0 = next + 1
		users := make([]ID, benchUsers)
		for i := range users {
			users[i] = id()
			if err := ix.PutPrincipal(Principal{ID: users[i], Kind: PrincipalUser, Name: names[i%len(names)]}); err != nil {
				panic(err)
			}
		}
		rnd := rand.New(rand.NewPCG(1, 2))
		grant := func(p ID, r Role, on ID) {
			if err := ix.Grant(Binding{Principal: p, Role: r, On: on}); err != nil {
				panic(err)
			}
			b.bindings++
		}
		projectRoles := []Role{RoleProjectsViewer, RoleProjectsDeveloper, RoleProjectsEditor, RoleProjectsAdmin}
		for c := range benchCommunities {
			com := put(KindCommunity, b.org, names[c])
			grant(users[rnd.IntN(benchUsers)], RoleCommunitiesAdmin, com)
			grant(users[rnd.IntN(benchUsers)], RoleCommunitiesViewer, com)
			for p := range benchProjects {
				proj := put(KindProject, com, names[p])
				b.projects = append(b.projects, proj)
				for range 8 {
					grant(users[rnd.IntN(benchUsers)], projectRoles[rnd.IntN(4)], proj)
				}
				for r := range benchResources {
					res := put(KindResource, proj, names[r])
					if r == 0 {
						b.resources = append(b.resources, res)
					}
					// 18 resource-level bindings per community.
					if r < 2 && p < 9 {
						grant(users[rnd.IntN(benchUsers)], projectRoles[rnd.IntN(4)], res)
					}
				}
			}
		}
		b.cloud = put(KindCloud, b.org, "mycloud")
		for f := range benchFolders {
			folder := put(KindFolder, b.cloud, names[f])
			for a := range benchAccounts {
				b.accounts = append(b.accounts, put(KindServiceAccount, folder, names[a]))
			}
		}
		grant(b.user0, RoleCloudsMember, b.cloud)
		grant(b.user0, RoleEditor, b.cloud)
		tb.Logf("built %d entities, %d bindings in %v", len(ix.nodes), b.bindings, time.Since(start).Round(time.Millisecond))
	})
	return &big
}

type benchQuery struct {
	p ID
	a Action
	t Target
}

// queries draws n decisions from the big org whose verdict is allowed.
func (b *bigOrg) queries(n int, allowed bool, rnd *rand.Rand) []benchQuery {
	var qs []benchQuery
	actions := []Action{ActViewProject, ActRunCode, ActUseResource, ActEditResource, ActViewResource, ActGrant}
	for len(qs) < n {
		i := rnd.IntN(len(b.projects))
		q := benchQuery{p: b.user0 + ID(rnd.IntN(benchUsers)), a: actions[rnd.IntN(len(actions))]}
		if q.a == ActViewProject || q.a == ActRunCode {
			q.t.ID = b.projects[i]
		} else {
			q.t.ID = b.resources[i]
		}
		if b.ix.Decide(q.p, q.a, q.t).Allowed == allowed {
			qs = append(qs, q)
		}
	}
	return qs
}

func BenchmarkDecide(b *testing.B) {
	org := buildBigOrg(b)
	rnd := rand.New(rand.NewPCG(3, 4))
	cloud := make([]benchQuery, 1024)
	for i := range cloud {
		cloud[i] = benchQuery{p: org.user0, a: ActManageKeys, t: Target{ID: org.accounts[rnd.IntN(len(org.accounts))]}}
	}
	for _, c := range []struct {
		name string
		qs   []benchQuery
	}{
		{"allow", org.queries(1024, true, rnd)},
		{"deny", org.queries(1024, false, rnd)},
		{"cloud-allow", cloud},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				q := &c.qs[i%len(c.qs)]
				org.ix.Decide(q.p, q.a, q.t)
				i++
			}
		})
	}
}

// BenchmarkGrant applies one binding change per op (a grant, or revoking it
// again) on the big org.
func BenchmarkGrant(b *testing.B) {
	org := buildBigOrg(b)
	rnd := rand.New(rand.NewPCG(5, 6))
	bs := make([]Binding, 1024)
	for i := range bs {
		bs[i] = Binding{Principal: org.user0 + ID(rnd.IntN(benchUsers)), Role: RoleProjectsDeveloper,
			On: org.resources[rnd.IntN(len(org.resources))] + ID(1+rnd.IntN(benchResources-1))}
	}
	granted := make([]bool, len(bs))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		k := i % len(bs)
		var err error
		if granted[k] {
			err = org.ix.Revoke(bs[k])
		} else {
			err = org.ix.Grant(bs[k])
		}
		if err != nil {
			b.Fatal(err)
		}
		granted[k] = !granted[k]
		i++
	}
	b.StopTimer()
	for k, g := range granted {
		if g {
			_ = org.ix.Revoke(bs[k])
		}
	}
}
