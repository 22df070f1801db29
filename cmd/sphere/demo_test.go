package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// `make run`: the embedded default shows the product at once, as the README
// walks through it.
func TestDemo(t *testing.T) {
	dir := sharedTempDir(t)
	mnt := filepath.Join(dir, "mnt")
	n := startNode(t, nodeOpts{extra: []string{"--demo-mount", mnt}})
	check := func() {
		t.Helper()
		if out, err := sh(t, 0, "ls "+mnt); err != nil || strings.Join(strings.Fields(out), " ") != "aliases dataproc-templates datasets images models nodes s3 secrets" {
			t.Errorf("ls mnt: %q %v", out, err)
		}
		if out, err := sh(t, uidAlice, "cat "+mnt+"/secrets/GREETING"); err != nil || out != "hello from sphere\n" {
			t.Errorf("alice cats the greeting: %q %v", out, err)
		}
		if out, err := sh(t, uidBob, "ls "+mnt+"/secrets"); err != nil || strings.TrimSpace(out) != "GREETING" {
			t.Errorf("bob lists the secrets: %q %v", out, err)
		}
		if _, err := sh(t, uidBob, "cat "+mnt+"/secrets/GREETING"); err == nil || !strings.Contains(err.Error(), "Permission denied") {
			t.Errorf("bob cats the greeting: %v", err)
		}
		if _, err := sh(t, uidCarol, "ls "+mnt); err == nil || !strings.Contains(err.Error(), "Permission denied") {
			t.Errorf("an unregistered uid lists the mount: %v", err)
		}
		out, err := sh(t, uidAlice, "cd / && /usr/bin/python3 -c \"import pandas; print(len(pandas.read_csv('"+mnt+"/datasets/samples/iris.csv')))\"")
		if err != nil || strings.TrimSpace(out) != "3" {
			t.Errorf("pandas reads the sample dataset: %q %v", out, err)
		}
	}
	check()
	// The demo is made once; a restart brings the same mount back.
	n.stop()
	n.restart()
	check()
	var orgs []entity
	n.jsonOut(0, &orgs, "org", "list")
	if len(orgs) != 1 || orgs[0].Name != "demo" {
		t.Errorf("orgs after restart: %+v", orgs)
	}
}
