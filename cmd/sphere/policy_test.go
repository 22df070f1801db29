package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// The access-control seed's worked example, exactly as it is told: Valya is
// Admin in "cats", Developer in "fences", Viewer in "top-secret" but Editor
// on its Project_111.
func TestValyaSharesAcrossCommunities(t *testing.T) {
	n := startNode(t, nodeOpts{})
	n.ok(0, "org", "create", "acme")
	for _, p := range []string{"cats/whiskers", "cats/paws", "fences/posts", "top-secret/project-111", "top-secret/project-222"} {
		comm := strings.Split(p, "/")[0]
		n.try(0, "community", "create", "acme/"+comm)
		n.ok(0, "project", "create", "acme/"+p)
		runAsOK(t, n, 0, []byte("v"), "secret", "create", "acme/"+p, "TOKEN")
	}
	n.ok(0, "user", "add", "valya", "--uid", fmt.Sprint(uidAlice))
	for _, g := range [][2]string{
		{"datasphere.communities.admin", "community:acme/cats"},
		{"datasphere.communities.developer", "community:acme/fences"},
		{"datasphere.communities.viewer", "community:acme/top-secret"},
		{"datasphere.community-projects.editor", "project:acme/top-secret/project-111"},
	} {
		n.ok(0, "role", "grant", g[0], "--to", "user:valya", "--on", g[1])
	}
	res := func(p string) string { return "resource:acme/" + p + "/secrets/TOKEN" }
	tests := []struct {
		resource, community string
		allowed             bool
	}{
		// "share any project's resources of cats into cats and into fences"
		{"cats/whiskers", "cats", true},
		{"cats/paws", "cats", true},
		{"cats/whiskers", "fences", true},
		{"cats/paws", "fences", true},
		// "publish Project_111's resources into cats and fences"
		{"top-secret/project-111", "cats", true},
		{"top-secret/project-111", "fences", true},
		// "but not into top-secret"
		{"top-secret/project-111", "top-secret", false},
		{"cats/whiskers", "top-secret", false},
		// A viewer of top-secret is no editor of its other projects, and a
		// developer of fences edits none of its projects.
		{"top-secret/project-222", "cats", false},
		{"fences/posts", "fences", false},
	}
	for _, tt := range tests {
		args := []string{"share", res(tt.resource), "--community", "acme/" + tt.community}
		check := []string{"access", "check", "publish-resource", res(tt.resource), "--via", "community:acme/" + tt.community}
		out, errOut, code := n.try(uidAlice, check...)
		if got := code == 0; got != tt.allowed {
			t.Errorf("access check publish %s → %s: exit %d, want allowed=%v\n%s%s", tt.resource, tt.community, code, tt.allowed, out, errOut)
		}
		if tt.allowed {
			n.ok(uidAlice, args...)
			n.ok(uidAlice, "unshare", res(tt.resource), "--community", "acme/"+tt.community)
		} else {
			n.fails(uidAlice, 3, "permission denied", args...)
		}
	}
	// The explanation names the chain: Admin on cats includes the projects' admin.
	out := n.ok(uidAlice, "access", "check", "publish-resource", res("cats/paws"), "--via", "community:acme/fences")
	for _, want := range []string{"datasphere.communities.admin", "acme/cats", "datasphere.communities.developer", "acme/fences"} {
		if !strings.Contains(out, want) {
			t.Errorf("publish explanation lacks %q:\n%s", want, out)
		}
	}
	var tree map[string]any
	n.jsonOut(uidAlice, &tree, "access", "check", "publish-resource", res("cats/paws"), "--via", "community:acme/fences")
	if tree["allowed"] != true {
		t.Errorf("JSON explanation: %v", tree)
	}
}

// runAsOK runs the CLI with stdin as uid and fails the test unless it succeeds.
func runAsOK(t *testing.T, n *node, uid uint32, stdin []byte, args ...string) string {
	t.Helper()
	out, errOut, code := runAs(t, uid, stdin, append([]string{"--socket", n.socket}, args...)...)
	if code != 0 {
		t.Fatalf("sphere %v: exit %d: %s", args, code, errOut)
	}
	return out
}

// The cloud seed's example: in cloud mycloud, folder robots holds service
// accounts alice and bob.
func TestMyCloudRobots(t *testing.T) {
	n := startNode(t, nodeOpts{})
	n.ok(0, "org", "create", "acme")
	n.ok(0, "cloud", "create", "acme/mycloud")
	n.ok(0, "folder", "create", "acme/mycloud/robots")
	n.ok(0, "folder", "create", "acme/mycloud/humans")
	n.ok(0, "service-account", "create", "acme/mycloud/robots/alice")
	n.ok(0, "service-account", "create", "acme/mycloud/robots/bob")
	users := map[string]uint32{"viewer": uidAlice, "sa-editor": uidBob, "folder-admin": uidCarol}
	for name, uid := range users {
		n.ok(0, "user", "add", name, "--uid", fmt.Sprint(uid))
		n.ok(0, "role", "grant", "resource-manager.clouds.member", "--to", "user:"+name, "--on", "cloud:acme/mycloud")
	}
	n.ok(0, "role", "grant", "viewer", "--to", "user:viewer", "--on", "cloud:acme/mycloud")
	n.ok(0, "role", "grant", "editor", "--to", "user:sa-editor", "--on", "service-account:acme/mycloud/robots/alice")
	n.ok(0, "role", "grant", "admin", "--to", "user:folder-admin", "--on", "folder:acme/mycloud/robots")

	names := func(uid uint32, args ...string) string {
		var es []entity
		n.jsonOut(uid, &es, args...)
		var out []string
		for _, e := range es {
			out = append(out, e.Name)
		}
		return strings.Join(out, ",")
	}
	// member + viewer on the cloud: sees every folder and what is in it.
	if got := names(uidAlice, "folder", "list", "acme/mycloud"); got != "humans,robots" {
		t.Errorf("viewer's folders: %q", got)
	}
	if got := names(uidAlice, "service-account", "list", "acme/mycloud/robots"); got != "alice,bob" {
		t.Errorf("viewer's service accounts: %q", got)
	}
	n.fails(uidAlice, 3, "permission denied", "service-account", "set", "acme/mycloud/robots/alice", "--description", "x")

	// editor on alice: manages alice, not bob.
	n.ok(uidBob, "service-account", "set", "acme/mycloud/robots/alice", "--description", "managed")
	if _, _, code := n.try(uidBob, "access", "check", "manage-keys", "service-account:acme/mycloud/robots/alice"); code != 0 {
		t.Errorf("the editor of alice may not manage alice's keys")
	}
	n.fails(uidBob, 4, "not found", "service-account", "set", "acme/mycloud/robots/bob", "--description", "x")

	// admin on robots: administers the folder and everything in it.
	for _, sa := range []string{"alice", "bob"} {
		n.ok(uidCarol, "service-account", "set", "acme/mycloud/robots/"+sa, "--description", "by the folder admin")
		n.ok(uidCarol, "role", "grant", "viewer", "--to", "user:viewer", "--on", "service-account:acme/mycloud/robots/"+sa)
	}
	n.fails(uidCarol, 4, "not found", "folder", "set", "acme/mycloud/humans", "--description", "x")

	// Taking membership away cuts every other right in the cloud.
	n.ok(0, "role", "revoke", "resource-manager.clouds.member", "--from", "user:sa-editor", "--on", "cloud:acme/mycloud")
	n.fails(uidBob, 4, "not found", "service-account", "set", "acme/mycloud/robots/alice", "--description", "again")

	// A public binding opens a resource without membership.
	n.ok(0, "role", "grant", "viewer", "--to", "group:allAuthenticatedUsers", "--on", "service-account:acme/mycloud/robots/bob")
	n.ok(uidBob, "service-account", "show", "acme/mycloud/robots/bob")

	// The sole owner cannot revoke their own ownership; with a second owner they can.
	n.fails(0, 5, "at least one owner", "role", "revoke", "resource-manager.clouds.owner", "--from", "user:root", "--on", "cloud:acme/mycloud")
	var bindings []struct{ Principal, Role, On string }
	n.jsonOut(0, &bindings, "role", "list", "--on", "cloud:acme/mycloud")
	raw, _ := json.Marshal(bindings)
	if !strings.Contains(string(raw), "resource-manager.clouds.owner") {
		t.Errorf("the refused revocation removed the owner: %s", raw)
	}
	n.ok(0, "role", "grant", "resource-manager.clouds.owner", "--to", "user:folder-admin", "--on", "cloud:acme/mycloud")
	n.ok(0, "role", "revoke", "resource-manager.clouds.owner", "--from", "user:root", "--on", "cloud:acme/mycloud")
	n.fails(uidCarol, 5, "at least one owner", "role", "revoke", "resource-manager.clouds.owner", "--from", "user:folder-admin", "--on", "cloud:acme/mycloud")
}
