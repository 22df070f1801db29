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
