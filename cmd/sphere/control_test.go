package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type entity struct {
	Name        string            `json:"name"`
	Path        string            `json:"path"`
	Kind        string            `json:"kind"`
	Creator     string            `json:"creator"`
	Description string            `json:"description"`
	Settings    map[string]string `json:"settings"`
	Members     []struct {
		Principal, Role, On string
	} `json:"members"`
}

// The README's walkthrough, as a new user would try it.
func TestWalkthrough(t *testing.T) {
	n := startNode(t, nodeOpts{})
	n.ok(0, "org", "create", "acme", "--description", "our company")
	n.ok(0, "community", "create", "acme/cats")
	n.ok(0, "project", "create", "acme/cats/vision")
	n.ok(0, "user", "add", "alice", "--uid", fmt.Sprint(uidAlice))
	n.ok(0, "role", "grant", "datasphere.community-projects.developer", "--to", "user:alice", "--on", "project:acme/cats/vision")

	out := n.ok(0, "access", "check", "--as", "user:alice", "run-code", "project:acme/cats/vision")
	if !strings.Contains(out, "allow") || !strings.Contains(out, "datasphere.community-projects.developer") {
		t.Errorf("access check for alice's run-code:\n%s", out)
	}
	out, _, code := n.try(0, "access", "check", "--as", "user:alice", "delete-project", "project:acme/cats/vision")
	if code != 3 || !strings.Contains(out, "denied") {
		t.Errorf("access check for alice's delete-project: exit %d\n%s", code, out)
	}

	// alice is herself on the socket, by her uid.
	if out := n.ok(uidAlice, "whoami"); !strings.Contains(out, "alice") || !strings.Contains(out, "allAuthenticatedUsers") {
		t.Errorf("whoami as alice:\n%s", out)
	}
	if out := n.ok(uidEve, "whoami"); !strings.Contains(out, "anonymous") || strings.Contains(out, "allAuthenticatedUsers") {
		t.Errorf("whoami as an unregistered uid:\n%s", out)
	}

	// What each may do and see.
	var projects []entity
	n.jsonOut(uidAlice, &projects, "project", "list")
	if len(projects) != 1 || projects[0].Path != "acme/cats/vision" {
		t.Errorf("alice's project list: %+v", projects)
	}
	n.jsonOut(uidEve, &projects, "project", "list")
	if len(projects) != 0 {
		t.Errorf("an unregistered uid sees projects: %+v", projects)
	}
	n.fails(uidAlice, 3, "permission denied", "org", "create", "initech")
	n.fails(uidAlice, 3, "permission denied", "project", "delete", "acme/cats/vision")
	n.fails(uidAlice, 3, "permission denied", "role", "grant", "admin", "--to", "user:alice", "--on", "project:acme/cats/vision")
	n.fails(uidEve, 4, "not found", "project", "show", "acme/cats/vision")
	n.fails(uidEve, 3, "permission denied", "user", "add", "eve", "--uid", fmt.Sprint(uidEve))

	// The creator of a community may bind its billing account.
	n.ok(0, "community", "set", "acme/cats", "--billing-account", "ba-42")
	var comm entity
	n.jsonOut(0, &comm, "community", "show", "acme/cats")
	if comm.Settings["billing-account"] != "ba-42" || comm.Creator != "root" {
		t.Errorf("community after set: %+v", comm)
	}
	var members []struct{ Principal, Role, On string }
	n.jsonOut(0, &members, "role", "list", "--on", "project:acme/cats/vision")
	found := false
	for _, m := range members {
		found = found || m.Principal == "user:alice" && m.Role == "datasphere.community-projects.developer"
	}
	if !found {
		t.Errorf("role list misses alice's binding: %+v", members)
	}
	n.ok(0, "role", "revoke", "datasphere.community-projects.developer", "--from", "user:alice", "--on", "project:acme/cats/vision")
	n.fails(uidAlice, 4, "not found", "project", "show", "acme/cats/vision")
}

// A person's uid changes (a new host, a renumbered directory): from the next
// call their old uid is nobody and the new one is them, with their roles;
// a restart keeps it.
func TestUserMovesToAnotherUID(t *testing.T) {
	n := startNode(t, nodeOpts{})
	n.ok(0, "org", "create", "acme")
	n.ok(0, "community", "create", "acme/cats")
	n.ok(0, "project", "create", "acme/cats/vision")
	n.ok(0, "user", "add", "alice", "--uid", fmt.Sprint(uidAlice), "--description", "vision team")
	n.ok(0, "user", "add", "bob", "--uid", fmt.Sprint(uidBob))
	n.ok(0, "role", "grant", "viewer", "--to", "user:alice", "--on", "project:acme/cats/vision")

	n.fails(0, 5, "already registered as user \"bob\"", "user", "set", "alice", "--uid", fmt.Sprint(uidBob))
	n.fails(0, 2, "--uid or --description", "user", "set", "alice")
	n.fails(uidAlice, 3, "permission denied", "user", "set", "alice", "--uid", fmt.Sprint(uidEve))
	var u struct {
		UID         uint32
		Description string
	}
	n.jsonOut(0, &u, "user", "set", "alice", "--uid", fmt.Sprint(uidEve))
	if u.UID != uidEve || u.Description != "vision team" {
		t.Errorf("user set --uid answered %+v", u)
	}
	check := func() {
		t.Helper()
		if out := n.ok(uidEve, "whoami"); !strings.Contains(out, "alice") {
			t.Errorf("whoami as alice's new uid:\n%s", out)
		}
		if out := n.ok(uidAlice, "whoami"); !strings.Contains(out, "anonymous") {
			t.Errorf("whoami as alice's old uid:\n%s", out)
		}
		n.ok(uidEve, "project", "show", "acme/cats/vision")
		n.fails(uidAlice, 4, "not found", "project", "show", "acme/cats/vision")
	}
	check()
	n.stop()
	n.restart()
	check()
}

// Bad input: an error that names the rule, a non-zero exit, nothing changed.
func TestBadInputChangesNothing(t *testing.T) {
	n := startNode(t, nodeOpts{})
	n.ok(0, "org", "create", "acme")
	before := n.ok(0, "--output", "json", "community", "list")
	tests := []struct {
		args []string
		code int
		rule string
	}{
		{[]string{"community", "create", "acme/Cats"}, 2, "lowercase"},
		{[]string{"community", "create", "acme/c/a/t"}, 2, "has 2 parts"},
		{[]string{"community", "create", "acme/" + strings.Repeat("c", 64)}, 2, "limit is 63"},
		{[]string{"community", "create", "acme/.."}, 2, "not a name"},
		{[]string{"community", "create", "acme/ca\x01ts"}, 2, "control character"},
		{[]string{"community", "create", "acme/"}, 2, "empty"},
		{[]string{"community", "create", "nope/cats"}, 4, "not found"},
		{[]string{"community", "set", "acme/cats", "--billing-account", "x"}, 4, "not found"},
		{[]string{"community", "create", "acme/cats", "--description", strings.Repeat("d", 2000)}, 2, "limit is 1024"},
		{[]string{"user", "add", "bob", "--uid", "0"}, 2, "0 is root"},
		{[]string{"user", "add", "bob", "--uid", "-5"}, 2, "between 1 and"},
		{[]string{"user", "add", "Bob", "--uid", "1002"}, 2, "lowercase"},
		{[]string{"role", "grant", "superuser", "--to", "user:root", "--on", "org:acme"}, 2, "superuser"},
		{[]string{"role", "grant", "viewer", "--to", "wizard:x", "--on", "org:acme"}, 2, "invalid principal"},
		{[]string{"role", "grant", "viewer", "--to", "user:root", "--on", "acme"}, 2, "KIND:PATH"},
		{[]string{"access", "check", "fly", "org:acme"}, 2, "fly"},
		{[]string{"--output", "yaml", "org", "list"}, 2, "--output"},
		{[]string{"org", "create"}, 2, "takes 1 argument"},
	}
	for _, tt := range tests {
		n.fails(0, tt.code, tt.rule, tt.args...)
	}
	if after := n.ok(0, "--output", "json", "community", "list"); after != before {
		t.Errorf("refused commands changed the communities:\nbefore %s\nafter %s", before, after)
	}
}

// kill -9 after acknowledged writes: every one of them is there after restart,
// including those after a snapshot.
func TestKill9KeepsAcknowledgedWrites(t *testing.T) {
	n := startNode(t, nodeOpts{})
	n.ok(0, "org", "create", "acme")
	for i := 0; i < 20; i++ {
		n.ok(0, "community", "create", fmt.Sprintf("acme/c%02d", i))
		if i == 9 {
			n.ok(0, "cluster", "snapshot")
		}
	}
	n.ok(0, "user", "add", "alice", "--uid", fmt.Sprint(uidAlice))
	n.ok(0, "role", "grant", "datasphere.communities.viewer", "--to", "user:alice", "--on", "community:acme/c03")
	before := n.ok(0, "--output", "json", "community", "list")
	n.kill9()
	n.restart()
	if after := n.ok(0, "--output", "json", "community", "list"); after != before {
		t.Fatalf("state after kill -9 differs:\nbefore %s\nafter  %s", before, after)
	}
	var comms []entity
	n.jsonOut(uidAlice, &comms, "community", "list")
	if len(comms) != 1 || comms[0].Path != "acme/c03" {
		t.Errorf("alice's binding did not survive: %+v", comms)
	}
	// And again, after a clean shutdown.
	n.stop()
	n.restart()
	if after := n.ok(0, "--output", "json", "community", "list"); after != before {
		t.Fatalf("state after restart differs:\nbefore %s\nafter  %s", before, after)
	}
}

// The master key: created 0600 on the first start; a wrong or missing key
// stops the daemon with a clear message.
func TestMasterKey(t *testing.T) {
	n := startNode(t, nodeOpts{})
	n.ok(0, "org", "create", "acme")
	key := filepath.Join(n.dataDir, "master.key")
	fi, err := os.Stat(key)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("master key mode %v, want 0600", fi.Mode().Perm())
	}
	n.stop()

	saved, err := os.ReadFile(key)
	if err != nil {
		t.Fatal(err)
	}
	wrong := make([]byte, len(saved))
	copy(wrong, saved)
	wrong[len(wrong)/2] ^= 0xff
	for _, tt := range []struct {
		name  string
		setup func()
		want  string
	}{
		{"missing", func() { os.Remove(key) }, "missing"},
		{"wrong", func() { os.WriteFile(key, wrong, 0o600) }, "not the key"},
	} {
		tt.setup()
		err := n.start()
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "master key") {
			t.Errorf("%s key: start = %v, want a message about the master key containing %q", tt.name, err, tt.want)
		}
	}
	if err := os.WriteFile(key, saved, 0o600); err != nil {
		t.Fatal(err)
	}
	n.restart()
	n.ok(0, "org", "show", "acme")
}
