package policy

import (
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
)

// grantOn is a role bound on a named entity; the zero value is no binding.
type grantOn struct {
	role Role
	on   string
}

// conformance is one row of SPEC.md §3/§4: the named role allows the action,
// a broader one does too, the next narrower one does not.
type conformance struct {
	name     string
	act      Action
	target   string
	role     Role // Target.Role, for grant/revoke
	named    grantOn
	broader  grantOn
	narrower grantOn
	member   bool // a user in a cloud: also bind resource-manager.clouds.member
}

var actionTable = []conformance{
	// SPEC.md §3, "Required roles".
	{name: "view a project", act: ActViewProject, target: "p1",
		named: grantOn{RoleProjectsViewer, "p1"}, broader: grantOn{RoleCommunitiesViewer, "cats"}},
	{name: "view a community", act: ActViewCommunity, target: "cats",
		named: grantOn{RoleCommunitiesViewer, "cats"}, broader: grantOn{RoleCommunitiesDeveloper, "cats"},
		narrower: grantOn{RoleProjectsAdmin, "cats"}},
	{name: "create a project", act: ActCreateProject, target: "cats",
		named: grantOn{RoleCommunitiesDeveloper, "cats"}, broader: grantOn{RoleCommunitiesEditor, "cats"},
		narrower: grantOn{RoleCommunitiesViewer, "cats"}},
	{name: "run code", act: ActRunCode, target: "p1",
		named: grantOn{RoleProjectsDeveloper, "p1"}, broader: grantOn{RoleProjectsEditor, "p1"},
		narrower: grantOn{RoleProjectsViewer, "p1"}},
	{name: "use a resource", act: ActUseResource, target: "secrets/TOKEN",
		named: grantOn{RoleProjectsDeveloper, "p1"}, broader: grantOn{RoleCommunitiesEditor, "cats"},
		narrower: grantOn{RoleProjectsViewer, "p1"}},
	{name: "create a resource", act: ActCreateResource, target: "p1",
		named: grantOn{RoleProjectsDeveloper, "p1"}, broader: grantOn{RoleEditor, "p1"},
		narrower: grantOn{RoleProjectsViewer, "p1"}},
	{name: "change a resource", act: ActEditResource, target: "secrets/TOKEN",
		named: grantOn{RoleProjectsDeveloper, "p1"}, broader: grantOn{RoleProjectsAdmin, "p1"},
		narrower: grantOn{RoleProjectsViewer, "p1"}},
	{name: "delete a resource", act: ActDeleteResource, target: "secrets/TOKEN",
		named: grantOn{RoleProjectsDeveloper, "p1"}, broader: grantOn{RoleCommunitiesAdmin, "acme"},
		narrower: grantOn{RoleCommunitiesDeveloper, "cats"}},
	{name: "change project settings", act: ActEditProject, target: "p1",
		named: grantOn{RoleProjectsEditor, "p1"}, broader: grantOn{RoleProjectsAdmin, "p1"},
		narrower: grantOn{RoleProjectsDeveloper, "p1"}},
	{name: "delete a project", act: ActDeleteProject, target: "p1",
		named: grantOn{RoleProjectsEditor, "p1"}, broader: grantOn{RoleCommunitiesEditor, "cats"},
		narrower: grantOn{RoleProjectsDeveloper, "p1"}},
	{name: "grant roles on a project", act: ActGrant, target: "p1", role: RoleProjectsViewer,
		named: grantOn{RoleProjectsAdmin, "p1"}, broader: grantOn{RoleCommunitiesAdmin, "cats"},
		narrower: grantOn{RoleProjectsEditor, "p1"}},
	{name: "change community settings", act: ActEditCommunity, target: "cats",
		named: grantOn{RoleCommunitiesEditor, "cats"}, broader: grantOn{RoleCommunitiesAdmin, "cats"},
		narrower: grantOn{RoleCommunitiesDeveloper, "cats"}},
	{name: "bind a billing account", act: ActBindBilling, target: "cats",
		named: grantOn{RoleCommunitiesEditor, "cats"}, broader: grantOn{RoleEditor, "cats"},
		narrower: grantOn{RoleCommunitiesDeveloper, "cats"}},
	{name: "delete a community", act: ActDeleteCommunity, target: "cats",
		named: grantOn{RoleCommunitiesEditor, "cats"}, broader: grantOn{RoleAdmin, "acme"},
		narrower: grantOn{RoleProjectsAdmin, "cats"}},
	{name: "grant roles on a community", act: ActGrant, target: "cats", role: RoleCommunitiesViewer,
		named: grantOn{RoleCommunitiesAdmin, "cats"}, broader: grantOn{RoleAdmin, "acme"},
		narrower: grantOn{RoleCommunitiesEditor, "cats"}},

	// Organization and System (actions.go).
	{name: "create an organization", act: ActCreateOrg, target: "system",
		named: grantOn{RoleAdmin, "system"}, narrower: grantOn{RoleEditor, "system"}},
	{name: "manage users", act: ActManageUsers, target: "system",
		named: grantOn{RoleAdmin, "system"}, narrower: grantOn{RoleEditor, "system"}},
	{name: "list users", act: ActListUsers, target: "system",
		named: grantOn{RoleViewer, "system"}, broader: grantOn{RoleEditor, "system"}},
	{name: "see an organization", act: ActViewOrg, target: "acme",
		named: grantOn{RoleProjectsViewer, "acme"}, broader: grantOn{RoleViewer, "system"}},
	{name: "change an organization", act: ActEditOrg, target: "acme",
		named: grantOn{RoleEditor, "acme"}, broader: grantOn{RoleAdmin, "acme"},
		narrower: grantOn{RoleViewer, "acme"}},
	{name: "create a community", act: ActCreateCommunity, target: "acme",
		named: grantOn{RoleCommunitiesEditor, "acme"}, broader: grantOn{RoleEditor, "acme"},
		narrower: grantOn{RoleCommunitiesDeveloper, "acme"}},
	{name: "create a cloud", act: ActCreateCloud, target: "acme",
		named: grantOn{RoleEditor, "acme"}, broader: grantOn{RoleAdmin, "system"},
		narrower: grantOn{RoleCommunitiesAdmin, "acme"}},
	{name: "list an organization's members", act: ActViewAccess, target: "acme",
		named: grantOn{RoleViewer, "acme"}, narrower: grantOn{RoleCommunitiesAdmin, "acme"}},

	// SPEC.md §4, clouds and folders (users, so with membership).
	{name: "view in a cloud", act: ActViewCloudEntity, target: "alice", member: true,
		named: grantOn{RoleViewer, "robots"}, broader: grantOn{RoleEditor, "mycloud"},
		narrower: grantOn{RoleCloudsMember, "mycloud"}},
	{name: "change in a cloud", act: ActEditCloudEntity, target: "vm", member: true,
		named: grantOn{RoleEditor, "robots"}, broader: grantOn{RoleCloudsOwner, "mycloud"},
		narrower: grantOn{RoleViewer, "robots"}},
	{name: "manage a service account's keys", act: ActManageKeys, target: "alice", member: true,
		named: grantOn{RoleEditor, "alice"}, broader: grantOn{RoleAdmin, "robots"},
		narrower: grantOn{RoleViewer, "alice"}},
	{name: "create a folder", act: ActCreateFolder, target: "mycloud", member: true,
		named: grantOn{RoleEditor, "mycloud"}, broader: grantOn{RoleAdmin, "acme"},
		narrower: grantOn{RoleEditor, "robots"}},
	{name: "delete in a cloud", act: ActDeleteCloudEntity, target: "robots", member: true,
		named: grantOn{RoleEditor, "robots"}, broader: grantOn{RoleEditor, "mycloud"},
		narrower: grantOn{RoleViewer, "mycloud"}},
	{name: "grant in a folder", act: ActGrant, target: "robots", role: RoleViewer, member: true,
		named: grantOn{RoleAdmin, "robots"}, broader: grantOn{RoleCloudsOwner, "mycloud"},
		narrower: grantOn{RoleEditor, "mycloud"}},
	{name: "grant the owner role", act: ActGrant, target: "mycloud", role: RoleCloudsOwner,
		named: grantOn{RoleCloudsOwner, "mycloud"}, broader: grantOn{RoleCloudsOwner, "acme"},
		narrower: grantOn{RoleAdmin, "mycloud"}, member: true},
}

// roleTable has one row per role of the catalog: something the role allows
// beyond what it includes.
var roleTable = []conformance{
	{name: "community-projects.viewer", act: ActViewProject, target: "p1",
		named: grantOn{RoleProjectsViewer, "p1"}, broader: grantOn{RoleProjectsDeveloper, "p1"}},
	{name: "community-projects.developer", act: ActRunCode, target: "p1",
		named: grantOn{RoleProjectsDeveloper, "p1"}, broader: grantOn{RoleProjectsEditor, "p1"},
		narrower: grantOn{RoleProjectsViewer, "p1"}},
	{name: "community-projects.editor", act: ActEditProject, target: "p1",
		named: grantOn{RoleProjectsEditor, "p1"}, broader: grantOn{RoleProjectsAdmin, "p1"},
		narrower: grantOn{RoleProjectsDeveloper, "p1"}},
	{name: "community-projects.admin", act: ActGrant, target: "secrets/TOKEN", role: RoleProjectsDeveloper,
		named: grantOn{RoleProjectsAdmin, "p1"}, broader: grantOn{RoleCommunitiesAdmin, "cats"},
		narrower: grantOn{RoleProjectsEditor, "p1"}},
	{name: "communities.viewer", act: ActViewCommunity, target: "cats",
		named: grantOn{RoleCommunitiesViewer, "cats"}, broader: grantOn{RoleCommunitiesDeveloper, "cats"},
		narrower: grantOn{RoleProjectsViewer, "cats"}},
	{name: "communities.developer", act: ActCreateProject, target: "cats",
		named: grantOn{RoleCommunitiesDeveloper, "cats"}, broader: grantOn{RoleCommunitiesEditor, "cats"},
		narrower: grantOn{RoleCommunitiesViewer, "cats"}},
	// communities.developer does not include community-projects.developer.
	{name: "communities.developer cannot run code", act: ActRunCode, target: "p1",
		named: grantOn{RoleCommunitiesEditor, "cats"}, broader: grantOn{RoleCommunitiesAdmin, "cats"},
		narrower: grantOn{RoleCommunitiesDeveloper, "cats"}},
	{name: "communities.editor", act: ActEditCommunity, target: "cats",
		named: grantOn{RoleCommunitiesEditor, "cats"}, broader: grantOn{RoleCommunitiesAdmin, "cats"},
		narrower: grantOn{RoleCommunitiesDeveloper, "cats"}},
	{name: "communities.admin", act: ActGrant, target: "cats", role: RoleCommunitiesEditor,
		named: grantOn{RoleCommunitiesAdmin, "cats"}, broader: grantOn{RoleAdmin, "cats"},
		narrower: grantOn{RoleCommunitiesEditor, "cats"}},
	{name: "viewer", act: ActViewCommunity, target: "cats",
		named: grantOn{RoleViewer, "cats"}, broader: grantOn{RoleEditor, "cats"}},
	{name: "editor (on a project: community-projects.editor)", act: ActEditProject, target: "p1",
		named: grantOn{RoleEditor, "p1"}, broader: grantOn{RoleAdmin, "p1"},
		narrower: grantOn{RoleViewer, "p1"}},
	{name: "editor (on a community: communities.editor)", act: ActCreateProject, target: "cats",
		named: grantOn{RoleEditor, "cats"}, broader: grantOn{RoleAdmin, "cats"},
		narrower: grantOn{RoleViewer, "cats"}},
	{name: "admin", act: ActGrant, target: "p1", role: RoleProjectsAdmin,
		named: grantOn{RoleAdmin, "p1"}, broader: grantOn{RoleAdmin, "acme"},
		narrower: grantOn{RoleEditor, "p1"}},
	{name: "resource-manager.clouds.member", act: ActViewCloudEntity, target: "bob",
		named: grantOn{RoleCloudsMember, "mycloud"}, broader: grantOn{RoleCloudsOwner, "mycloud"},
		narrower: grantOn{RoleCloudsMember, "othercloud"}},
	{name: "resource-manager.clouds.owner", act: ActRevoke, target: "mycloud", role: RoleCloudsOwner,
		named: grantOn{RoleCloudsOwner, "mycloud"}, broader: grantOn{RoleCloudsOwner, "acme"},
		narrower: grantOn{RoleAdmin, "mycloud"}, member: true},
}

func TestActionTable(t *testing.T) { runConformance(t, actionTable) }
func TestRoleTable(t *testing.T)   { runConformance(t, roleTable) }

func runConformance(t *testing.T, rows []conformance) {
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			for _, c := range []struct {
				label string
				g     grantOn
				allow bool
			}{{"named", row.named, true}, {"broader", row.broader, true}, {"narrower", row.narrower, false}} {
				if c.g.role == RoleNone && c.label == "broader" {
					continue // the named role is already the broadest
				}
				f := newFixture(t)
				u := f.user("u")
				if row.member {
					f.grant(u, RoleCloudsMember, "mycloud")
				}
				if row.name == "resource-manager.clouds.member" {
					// membership's row: viewer everywhere, member decides.
					f.grant(u, RoleViewer, "acme")
				}
				if c.g.role != RoleNone {
					f.grant(u, c.g.role, c.g.on)
				}
				d := f.decide(u, row.act, row.target, "", row.role)
				if d.Allowed != c.allow {
					t.Errorf("%s %s on %s: allowed=%v, want %v\n%s", c.label, c.g.role, c.g.on, d.Allowed, c.allow,
						f.ix.Explain(u, row.act, Target{ID: f.at(row.target), Role: row.role}))
				}
				if !d.Allowed && d.Missing == "" {
					t.Errorf("%s: denied without Missing", c.label)
				}
				e := f.ix.Explain(u, row.act, Target{ID: f.at(row.target), Role: row.role})
				if e.Allowed != d.Allowed {
					t.Errorf("%s: Explain says allowed=%v, Decide %v", c.label, e.Allowed, d.Allowed)
				}
			}
		})
	}
}

// TestValya is the access-control seed's worked example, exactly.
func TestValya(t *testing.T) {
	f := newFixture(t)
	for _, c := range []string{"fences", "top-secret"} {
		f.entity(c, KindCommunity, "acme")
	}
	f.entity("project-111", KindProject, "top-secret")
	f.entity("r111", KindResource, "project-111")
	f.entity("whiskers", KindProject, "cats")
	f.entity("rcats", KindResource, "whiskers")
	f.entity("posts", KindProject, "fences")
	f.entity("rfences", KindResource, "posts")

	valya := f.user("valya")
	f.grant(valya, RoleCommunitiesAdmin, "cats")
	f.grant(valya, RoleCommunitiesDeveloper, "fences")
	f.grant(valya, RoleCommunitiesViewer, "top-secret")
	f.grant(valya, RoleProjectsEditor, "project-111")

	// Any project's resources of "cats", into "cats" and into "fences".
	for _, r := range []string{"rcats", "secrets/TOKEN"} {
		f.allow(valya, ActPublishResource, r, "cats")
		f.allow(valya, ActPublishResource, r, "fences")
		f.deny(valya, ActPublishResource, r, "top-secret")
	}
	// Project_111's resources into "cats" and "fences", not "top-secret".
	f.allow(valya, ActPublishResource, "r111", "cats")
	f.allow(valya, ActPublishResource, "r111", "fences")
	d := f.deny(valya, ActPublishResource, "r111", "top-secret")
	if d.Missing != "datasphere.communities.developer on the community" {
		t.Errorf("missing %q", d.Missing)
	}
	// She is only a community developer in "fences": not an editor of its projects.
	d = f.deny(valya, ActPublishResource, "rfences", "cats")
	if d.Missing != "datasphere.community-projects.editor on the project" {
		t.Errorf("missing %q", d.Missing)
	}
	// Never across organizations, and unpublishing follows the same rule.
	f.deny(valya, ActPublishResource, "rcats", "oc")
	f.allow(valya, ActUnpublishResource, "r111", "fences")
	f.deny(valya, ActUnpublishResource, "r111", "top-secret")
	// What she may run: code in project-111, not in top-secret's others.
	f.allow(valya, ActRunCode, "project-111", "")
	f.deny(valya, ActRunCode, "posts", "")
	f.allow(valya, ActViewProject, "posts", "")
}

// TestPublishedResources: a published resource is usable, read-only, from
// projects of the community it is published to.
func TestPublishedResources(t *testing.T) {
	f := newFixture(t)
	dev, viewer := f.user("dev"), f.user("viewer")
	f.grant(dev, RoleProjectsDeveloper, "p2")
	f.grant(viewer, RoleProjectsViewer, "p2")

	f.deny(dev, ActUseResource, "secrets/TOKEN", "p2")
	f.must(f.ix.Publish(f.at("secrets/TOKEN"), f.at("dogs")))

	f.allow(dev, ActUseResource, "secrets/TOKEN", "p2")
	f.allow(dev, ActViewResource, "secrets/TOKEN", "p2")
	f.deny(dev, ActEditResource, "secrets/TOKEN", "p2")
	f.deny(dev, ActDeleteResource, "secrets/TOKEN", "p2")
	f.deny(dev, ActUseResource, "secrets/TOKEN", "") // not a member of p1
	f.deny(dev, ActUseResource, "datasets/birds", "p2")
	f.allow(viewer, ActViewResource, "secrets/TOKEN", "p2")
	f.deny(viewer, ActUseResource, "secrets/TOKEN", "p2")
	f.deny(dev, ActUseResource, "secrets/TOKEN", "dogs") // Via must be a project
	f.deny(dev, ActUseResource, "secrets/TOKEN", "op")   // another organization

	if got := f.ix.PublishedTo(f.at("dogs")); len(got) != 1 || got[0] != f.at("secrets/TOKEN") {
		t.Errorf("PublishedTo(dogs) = %v", got)
	}
	f.must(f.ix.Unpublish(f.at("secrets/TOKEN"), f.at("dogs")))
	f.deny(dev, ActUseResource, "secrets/TOKEN", "p2")
	wantErr(t, f.ix.Unpublish(f.at("secrets/TOKEN"), f.at("dogs")), ErrNotPublished)
	wantErr(t, f.ix.Publish(f.at("secrets/TOKEN"), f.at("oc")), ErrCrossOrg)
	wantErr(t, f.ix.Publish(f.at("p1"), f.at("dogs")), ErrWrongKind)

	// Removing the resource drops its publications.
	f.must(f.ix.Publish(f.at("datasets/birds"), f.at("dogs")))
	f.must(f.ix.RemoveEntity(f.at("datasets/birds")))
	if got := f.ix.PublishedTo(f.at("dogs")); len(got) != 0 {
		t.Errorf("PublishedTo(dogs) after removal = %v", got)
	}
}

// TestMyCloud is the cloud-hierarchy seed's example, exactly.
func TestMyCloud(t *testing.T) {
	f := newFixture(t)
	viewer, keeper, admin := f.user("viewer"), f.user("keeper"), f.user("admin")
	for _, u := range []ID{viewer, keeper, admin} {
		f.grant(u, RoleCloudsMember, "mycloud")
	}

	// Member and viewer on mycloud: the list of folders and their content.
	f.grant(viewer, RoleViewer, "mycloud")
	for _, e := range []string{"mycloud", "robots", "alice", "bob", "vm"} {
		f.allow(viewer, ActViewCloudEntity, e, "")
		f.deny(viewer, ActEditCloudEntity, e, "")
	}

	// Editor on alice: manages alice, not bob.
	f.grant(keeper, RoleEditor, "alice")
	f.allow(keeper, ActManageKeys, "alice", "")
	f.allow(keeper, ActEditCloudEntity, "alice", "")
	f.deny(keeper, ActManageKeys, "bob", "")
	f.deny(keeper, ActEditCloudEntity, "bob", "")
	f.deny(keeper, ActViewCloudEntity, "robots", "")

	// Admin on robots: the folder and everything in it, alice and bob.
	f.grant(admin, RoleAdmin, "robots")
	for _, e := range []string{"robots", "alice", "bob", "vm"} {
		f.allow(admin, ActEditCloudEntity, e, "")
		f.allow(admin, ActDeleteCloudEntity, e, "")
	}
	for _, e := range []string{"robots", "alice", "bob"} {
		f.allow(admin, ActGrant, e, "")
	}
	f.deny(admin, ActCreateFolder, "mycloud", "")
	f.deny(admin, ActGrant, "mycloud", "")

	// Revoking membership cuts every other right.
	f.must(f.ix.Revoke(Binding{Principal: keeper, Role: RoleCloudsMember, On: f.at("mycloud")}))
	d := f.deny(keeper, ActManageKeys, "alice", "")
	if d.Missing != denyMembership {
		t.Errorf("missing %q, want membership", d.Missing)
	}
	e := f.ix.Explain(keeper, ActManageKeys, Target{ID: f.at("alice")})
	if len(e.Requirements) != 2 || e.Requirements[0].Grant == nil || e.Requirements[1].Satisfied {
		t.Errorf("explanation should show the would-be binding and the missing membership:\n%s", e)
	}

	// A service account needs no membership: its own bindings count.
	f.grant(f.at("alice"), RoleEditor, "robots")
	f.allow(f.at("alice"), ActManageKeys, "bob", "")
	f.deny(f.at("bob"), ActManageKeys, "alice", "")

	// A folder resource accepts no bindings and inherits.
	err := f.ix.Grant(Binding{Principal: viewer, Role: RoleViewer, On: f.at("vm")})
	wantErr(t, err, ErrNotBindable)
	if !strings.Contains(err.Error(), "inherits from its folder, then the cloud") {
		t.Errorf("message %q", err)
	}
}

func TestOwners(t *testing.T) {
	f := newFixture(t)
	owner, second := f.user("owner"), f.user("second")
	f.grant(owner, RoleCloudsOwner, "mycloud")

	// The owner needs no membership and does anything, including granting owner.
	f.allow(owner, ActCreateFolder, "mycloud", "")
	f.allow(owner, ActManageKeys, "alice", "")
	if d := f.decide(owner, ActGrant, "mycloud", "", RoleCloudsOwner); !d.Allowed {
		t.Fatalf("owner cannot grant owner: %s", d.Missing)
	}
	// ... but only in the cloud: owner is not organization admin.
	f.deny(owner, ActEditOrg, "acme", "")
	f.deny(owner, ActViewCloudEntity, "othercloud", "")

	// The sole owner cannot revoke themselves.
	b := Binding{Principal: owner, Role: RoleCloudsOwner, On: f.at("mycloud")}
	err := f.ix.Revoke(b)
	wantErr(t, err, ErrLastOwner)
	want := `cannot revoke resource-manager.clouds.owner from user "owner" on cloud "mycloud": cloud "mycloud" would have no owner left, and a cloud must keep at least one owner`
	if err.Error() != want {
		t.Errorf("message\n%s\nwant\n%s", err, want)
	}
	wantErr(t, f.ix.CheckRevoke(b), ErrLastOwner)
	wantErr(t, f.ix.RemovePrincipal(owner), ErrLastOwner)
	f.allow(owner, ActCreateFolder, "mycloud", "")

	// With a second owner, either may go, but not both.
	f.grant(second, RoleCloudsOwner, "mycloud")
	f.must(f.ix.Revoke(b))
	wantErr(t, f.ix.Revoke(Binding{Principal: second, Role: RoleCloudsOwner, On: f.at("mycloud")}), ErrLastOwner)

	// An owner bound on the organization owns its clouds.
	f.grant(owner, RoleCloudsOwner, "acme")
	f.allow(owner, ActCreateFolder, "mycloud", "")
	f.must(f.ix.Revoke(Binding{Principal: second, Role: RoleCloudsOwner, On: f.at("mycloud")}))
	wantErr(t, f.ix.Revoke(Binding{Principal: owner, Role: RoleCloudsOwner, On: f.at("acme")}), ErrLastOwner)

	// The last-owner service account cannot be removed either.
	f.grant(f.at("alice"), RoleCloudsOwner, "mycloud")
	f.must(f.ix.Revoke(Binding{Principal: owner, Role: RoleCloudsOwner, On: f.at("acme")}))
	wantErr(t, f.ix.RemoveEntity(f.at("alice")), ErrLastOwner)
}

func TestPublicAccess(t *testing.T) {
	f := newFixture(t)
	stranger := f.user("stranger")
	f.grant(AllUsers, RoleViewer, "alice")
	f.grant(AllAuthenticatedUsers, RoleViewer, "bob")

	// allUsers: anyone, registered or not, without membership.
	d := f.allow(Anonymous, ActViewCloudEntity, "alice", "")
	if d.By.Principal != AllUsers {
		t.Errorf("By %+v", d.By)
	}
	f.allow(stranger, ActViewCloudEntity, "alice", "")
	f.allow(ID(99999), ActViewCloudEntity, "alice", "") // unregistered: anonymous
	// allAuthenticatedUsers: registered principals only.
	f.deny(Anonymous, ActViewCloudEntity, "bob", "")
	f.allow(stranger, ActViewCloudEntity, "bob", "")
	f.allow(f.at("alice"), ActViewCloudEntity, "bob", "")
	f.deny(stranger, ActEditCloudEntity, "bob", "")

	// DataSphere side: groups are bindable anywhere bindable.
	f.grant(AllAuthenticatedUsers, RoleProjectsViewer, "p1")
	f.allow(stranger, ActViewProject, "p1", "")
	f.deny(Anonymous, ActViewProject, "p1", "")

	// Explain marks public access and asks no membership.
	e := f.ix.Explain(stranger, ActViewCloudEntity, Target{ID: f.at("alice")})
	if !e.Allowed || len(e.Requirements) != 1 || !e.Requirements[0].Grant.Public {
		t.Errorf("explanation:\n%s", e)
	}
}

func TestBindability(t *testing.T) {
	f := newFixture(t)
	u := f.user("u")
	for _, c := range []struct {
		role Role
		on   string
		want error
	}{
		{RoleCommunitiesViewer, "p1", ErrRoleNotBindable},
		{RoleCommunitiesAdmin, "secrets/TOKEN", ErrRoleNotBindable},
		{RoleProjectsViewer, "system", ErrRoleNotBindable},
		{RoleCloudsOwner, "robots", ErrRoleNotBindable},
		{RoleCloudsMember, "cats", ErrRoleNotBindable},
		{RoleProjectsEditor, "mycloud", ErrRoleNotBindable},
		{RoleViewer, "vm", ErrNotBindable},
		{RoleCloudsOwner, "vm", ErrNotBindable},
		{Role(200), "p1", ErrUnknownRole},
		{RoleViewer, "nowhere", ErrNoSuchEntity},
		{RoleCommunitiesViewer, "acme", nil},
		{RoleProjectsAdmin, "secrets/TOKEN", nil},
		{RoleCloudsOwner, "acme", nil},
		{RoleAdmin, "alice", nil},
		{RoleViewer, "system", nil},
	} {
		b := Binding{Principal: u, Role: c.role, On: f.id[c.on]}
		err := f.ix.CheckGrant(b)
		if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Errorf("CheckGrant(%s on %s) = %v, want %v", c.role, c.on, err, c.want)
		}
		if err2 := f.ix.Grant(b); (err2 == nil) != (err == nil) {
			t.Errorf("Grant and CheckGrant disagree: %v vs %v", err2, err)
		}
	}
	wantErr(t, f.ix.Grant(Binding{Principal: 424242, Role: RoleViewer, On: f.at("p1")}), ErrNoSuchPrincipal)
	wantErr(t, f.ix.Grant(Binding{Principal: Anonymous, Role: RoleViewer, On: f.at("p1")}), ErrNoSuchPrincipal)
	wantErr(t, f.ix.Revoke(Binding{Principal: u, Role: RoleEditor, On: f.at("p1")}), ErrNoSuchBinding)
	msg := f.ix.CheckGrant(Binding{Principal: u, Role: RoleCommunitiesViewer, On: f.at("p1")}).Error()
	if want := `cannot grant datasphere.communities.viewer on project "p1": that role can be bound only on organization, community`; msg != want {
		t.Errorf("message %q", msg)
	}
}

func TestCrossOrg(t *testing.T) {
	f := newFixture(t)
	alice := f.at("alice")
	for _, on := range []string{"other", "oc", "op", "othercloud", "otherfolder", "system"} {
		wantErr(t, f.ix.CheckGrant(Binding{Principal: alice, Role: RoleViewer, On: f.at(on)}), ErrCrossOrg)
	}
	f.grant(alice, RoleProjectsDeveloper, "p1") // a service account works in its own org's projects
	f.allow(alice, ActRunCode, "p1", "")

	// An admin of acme reaches nothing of "other".
	u := f.user("u")
	f.grant(u, RoleAdmin, "acme")
	f.deny(u, ActViewOrg, "other", "")
	f.deny(u, ActRunCode, "op", "")
	f.deny(u, ActPublishResource, "secrets/TOKEN", "oc")
}

func TestNesting(t *testing.T) {
	f := newFixture(t)
	for _, c := range []struct {
		e    Entity
		want error
	}{
		{Entity{ID: 500, Kind: KindProject, Parent: f.at("acme"), Name: "x"}, ErrBadNesting},
		{Entity{ID: 500, Kind: KindServiceAccount, Parent: f.at("mycloud"), Name: "x"}, ErrBadNesting},
		{Entity{ID: 500, Kind: KindFolder, Parent: f.at("robots"), Name: "x"}, ErrBadNesting},
		{Entity{ID: 500, Kind: KindResource, Parent: f.at("secrets/TOKEN"), Name: "x"}, ErrBadNesting},
		{Entity{ID: 500, Kind: KindOrg, Parent: f.at("acme"), Name: "x"}, ErrBadNesting},
		{Entity{ID: 500, Kind: KindSystem, Parent: System, Name: "x"}, ErrWrongKind},
		{Entity{ID: 500, Kind: KindCommunity, Parent: 9999, Name: "x"}, ErrNoSuchEntity},
		{Entity{ID: 50, Kind: KindOrg, Parent: System, Name: "x"}, ErrReserved},
		{Entity{ID: f.at("p1"), Kind: KindProject, Parent: f.at("dogs"), Name: "p1"}, ErrBadNesting},
	} {
		wantErr(t, f.ix.PutEntity(c.e), c.want)
	}
	// Re-put renames, and explanations follow.
	f.must(f.ix.PutEntity(Entity{ID: f.at("p1"), Kind: KindProject, Parent: f.at("cats"), Name: "kittens"}))
	if e := f.ix.Explain(Bootstrap, ActRunCode, Target{ID: f.at("p1")}); e.Target != "acme/cats/kittens" {
		t.Errorf("target %q", e.Target)
	}
	wantErr(t, f.ix.RemoveEntity(f.at("p1")), ErrHasChildren)
	wantErr(t, f.ix.RemoveEntity(System), ErrReserved)

	// IDs: users and entities never share one; a service account is both.
	u := f.user("u")
	wantErr(t, f.ix.PutEntity(Entity{ID: u, Kind: KindCommunity, Parent: f.at("acme"), Name: "y"}), ErrIDInUse)
	wantErr(t, f.ix.PutPrincipal(Principal{ID: f.at("p1"), Kind: PrincipalUser, Name: "y"}), ErrIDInUse)
	wantErr(t, f.ix.PutPrincipal(Principal{ID: f.at("p1"), Kind: PrincipalServiceAccount, Name: "y"}), ErrWrongKind)
	wantErr(t, f.ix.PutPrincipal(Principal{ID: 5000, Kind: PrincipalGroup, Name: "y"}), ErrReserved)
	wantErr(t, f.ix.RemovePrincipal(AllUsers), ErrReserved)
	wantErr(t, f.ix.RemovePrincipal(Bootstrap), ErrReserved)

	// Removing an entity drops its bindings; removing a principal drops its own.
	f.grant(u, RoleViewer, "dogs")
	f.grant(u, RoleEditor, "p2")
	f.must(f.ix.RemoveEntity(f.at("p2")))
	if got := f.ix.BindingsOf(u); len(got) != 1 || got[0].On != f.at("dogs") {
		t.Errorf("BindingsOf after RemoveEntity = %v", got)
	}
	f.must(f.ix.RemovePrincipal(u))
	if got := f.ix.Bindings(f.at("dogs")); len(got) != 0 {
		t.Errorf("Bindings after RemovePrincipal = %v", got)
	}
	// Removing a service account removes its principal.
	f.grant(f.at("bob"), RoleViewer, "cats")
	f.must(f.ix.RemoveEntity(f.at("bob")))
	if got := f.ix.Bindings(f.at("cats")); len(got) != 0 {
		t.Errorf("bob's bindings survive him: %v", got)
	}
}

func TestNewIndexAndReset(t *testing.T) {
	f := newFixture(t)
	f.allow(Bootstrap, ActCreateOrg, "system", "")
	f.allow(Bootstrap, ActRunCode, "p1", "")
	f.deny(Bootstrap, ActViewCloudEntity, "robots", "") // admin, but not a member of the cloud
	f.deny(Anonymous, ActViewOrg, "acme", "")
	want := []Binding{{Principal: Bootstrap, Role: RoleAdmin, On: System}}
	f.ix.Reset()
	if got := f.ix.Bindings(System); len(got) != 1 || got[0] != want[0] {
		t.Errorf("after Reset: %v", got)
	}
	if d := f.ix.Decide(Bootstrap, ActRunCode, Target{ID: f.at("p1")}); d.Allowed || d.Missing != denyNoEntity {
		t.Errorf("after Reset p1 still decides: %+v", d)
	}
}

func TestNames(t *testing.T) {
	for _, a := range Actions() {
		b, err := ParseAction(a.String())
		if err != nil || b != a {
			t.Errorf("ParseAction(%q) = %v, %v", a, b, err)
		}
		if strings.ToLower(a.String()) != a.String() || strings.Contains(a.String(), "_") {
			t.Errorf("action name %q is not kebab-case", a)
		}
	}
	for _, r := range Roles() {
		q, err := ParseRole(r.String())
		if err != nil || q != r {
			t.Errorf("ParseRole(%q) = %v, %v", r, q, err)
		}
	}
	if _, err := ParseRole("datasphere.communities.owner"); !errors.Is(err, ErrUnknownRole) {
		t.Errorf("ParseRole: %v", err)
	}
	if _, err := ParseAction("fly"); !errors.Is(err, ErrUnknownAction) {
		t.Errorf("ParseAction: %v", err)
	}
	// Each capability's named role really carries it.
	for i, r := range capRole {
		if roleMask[r]&(1<<i) == 0 {
			t.Errorf("capRole[%d] = %s does not carry it", i, r)
		}
	}
}

func TestExplain(t *testing.T) {
	f := newFixture(t)
	u := f.user("valya")
	f.grant(u, RoleCommunitiesAdmin, "cats")
	e := f.ix.Explain(u, ActUseResource, Target{ID: f.at("secrets/TOKEN")})
	if !e.Allowed || e.Target != "acme/cats/p1/secrets/TOKEN" || e.Principal != "valya" {
		t.Fatalf("%+v", e)
	}
	g := e.Requirements[0].Grant
	through := strings.Join(g.Through, " → ")
	want := "datasphere.communities.admin → datasphere.community-projects.admin → datasphere.community-projects.editor → datasphere.community-projects.developer"
	if through != want || g.On != "acme/cats" || g.Principal != "valya" {
		t.Errorf("chain %+v", g)
	}
	s := e.String()
	for _, part := range []string{"allowed: valya use-resource on acme/cats/p1/secrets/TOKEN", want, "bound: valya has datasphere.communities.admin on acme/cats"} {
		if !strings.Contains(s, part) {
			t.Errorf("String() lacks %q:\n%s", part, s)
		}
	}
	if _, err := json.Marshal(e); err != nil {
		t.Fatal(err)
	}
	e = f.ix.Explain(u, ActPublishResource, Target{ID: f.at("secrets/TOKEN"), Via: f.at("dogs")})
	if e.Allowed || len(e.Requirements) != 2 || !e.Requirements[0].Satisfied || e.Requirements[1].Satisfied ||
		e.Requirements[1].Missing != "datasphere.communities.developer on the community" {
		t.Errorf("publish explanation:\n%s", e)
	}
	e = f.ix.Explain(u, ActRunCode, Target{ID: f.at("robots")})
	if e.Allowed || e.Missing != denyNotApplicable {
		t.Errorf("not-applicable explanation:\n%s", e)
	}
}

func TestDecideDoesNotAllocate(t *testing.T) {
	f := newFixture(t)
	u := f.user("u")
	f.grant(u, RoleCommunitiesAdmin, "cats")
	f.grant(u, RoleCloudsMember, "mycloud")
	f.grant(u, RoleEditor, "robots")
	for _, c := range []struct {
		a Action
		t Target
	}{
		{ActUseResource, Target{ID: f.at("secrets/TOKEN")}},
		{ActPublishResource, Target{ID: f.at("secrets/TOKEN"), Via: f.at("cats")}},
		{ActManageKeys, Target{ID: f.at("alice")}},
		{ActRunCode, Target{ID: f.at("p2")}},
		{ActGrant, Target{ID: f.at("mycloud"), Role: RoleCloudsOwner}},
	} {
		if n := testing.AllocsPerRun(100, func() { f.ix.Decide(u, c.a, c.t) }); n != 0 {
			t.Errorf("%s: %v allocs per Decide", c.a, n)
		}
	}
}

// TestConcurrentDecide runs decisions during mutations (run with -race).
func TestConcurrentDecide(t *testing.T) {
	f := newFixture(t)
	u := f.user("u")
	p1 := f.at("p1")
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
					f.ix.Decide(u, ActRunCode, Target{ID: p1})
					f.ix.Explain(u, ActRunCode, Target{ID: p1})
				}
			}
		})
	}
	for range 200 {
		b := Binding{Principal: u, Role: RoleProjectsDeveloper, On: p1}
		f.must(f.ix.Grant(b))
		f.ix.Bindings(p1)
		f.must(f.ix.Revoke(b))
	}
	close(stop)
	wg.Wait()
}
