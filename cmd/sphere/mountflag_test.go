package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// `sphere server --mount ORG/C/P=DIR` mounts at start, and a bad one stops
// the daemon with a message naming it.
func TestServerMountFlag(t *testing.T) {
	n := startNode(t, nodeOpts{})
	n.ok(0, "org", "create", "acme")
	n.ok(0, "community", "create", "acme/cats")
	n.ok(0, "project", "create", projectPath)
	runAsOK(t, n, 0, []byte("v"), "secret", "create", projectPath, "TOKEN")
	n.stop()

	mnt := filepath.Join(n.dir, "flag-mnt")
	n.extra = []string{"--mount", projectPath + "=" + mnt}
	n.restart()
	if out, err := sh(t, 0, "cat "+mnt+"/secrets/TOKEN"); err != nil || out != "v" {
		t.Fatalf("the --mount project: %q %v", out, err)
	}
	if out := n.ok(0, "mount"); !strings.Contains(out, mnt) {
		t.Errorf("mount list:\n%s", out)
	}
	n.stop()

	n.extra = []string{"--mount", "acme/cats/nope=" + mnt}
	if err := n.start(); err == nil || !strings.Contains(err.Error(), "acme/cats/nope") {
		t.Errorf("a --mount of a missing project: %v", err)
	}
	n.extra = []string{"--mount", "no-equals-sign"}
	if err := n.start(); err == nil || !strings.Contains(err.Error(), "ORG/C/P=DIR") {
		t.Errorf("a malformed --mount: %v", err)
	}
}

// `secret set` replaces the value of an existing secret and refuses a
// missing one; `secret create` refuses an existing one.
func TestSecretSet(t *testing.T) {
	p := newProject(t, "old")
	runAsOK(t, p.node, uidAlice, []byte("new"), "secret", "set", projectPath, "TOKEN")
	if out, err := sh(t, uidAlice, "cat "+p.mnt+"/secrets/TOKEN"); err != nil || out != "new" {
		t.Errorf("after set: %q %v", out, err)
	}
	if _, errOut, code := runAs(t, uidAlice, []byte("x"), "--socket", p.socket, "secret", "set", projectPath, "MISSING"); code != 4 || !strings.Contains(errOut, "not found") {
		t.Errorf("set of a missing secret: exit %d %s", code, errOut)
	}
	if _, errOut, code := runAs(t, uidAlice, []byte("x"), "--socket", p.socket, "secret", "create", projectPath, "TOKEN"); code != 5 || !strings.Contains(errOut, "already exists") {
		t.Errorf("create over an existing secret: exit %d %s", code, errOut)
	}
	if _, errOut, code := runAs(t, uidBob, []byte("x"), "--socket", p.socket, "secret", "set", projectPath, "TOKEN"); code != 3 {
		t.Errorf("a viewer sets a secret: exit %d %s", code, errOut)
	}
}
