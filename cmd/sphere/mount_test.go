package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// project is a node with acme/cats/vision, its users and a mount.
type project struct {
	*node
	mnt string
}

const projectPath = "acme/cats/vision"

// newProject sets up acme/cats/vision with alice (developer), bob (viewer)
// and a secret TOKEN, and mounts it as root under the test's temp dir; the
// node (and so the mount) stops when the test ends.
func newProject(t *testing.T, secret string) *project {
	t.Helper()
	n := startNode(t, nodeOpts{})
	n.ok(0, "org", "create", "acme")
	n.ok(0, "community", "create", "acme/cats")
	n.ok(0, "project", "create", projectPath)
	n.ok(0, "user", "add", "alice", "--uid", fmt.Sprint(uidAlice))
	n.ok(0, "user", "add", "bob", "--uid", fmt.Sprint(uidBob))
	n.ok(0, "role", "grant", "datasphere.community-projects.developer", "--to", "user:alice", "--on", "project:"+projectPath)
	n.ok(0, "role", "grant", "datasphere.community-projects.viewer", "--to", "user:bob", "--on", "project:"+projectPath)
	runAsOK(t, n, 0, []byte(secret), "secret", "create", projectPath, "TOKEN")
	p := &project{node: n, mnt: filepath.Join(n.dir, "mnt")}
	n.ok(0, "mount", projectPath, p.mnt)
	t.Cleanup(func() {
		// The node's SIGTERM unmounts; if the daemon died, detach whatever is left.
		if n.cmd == nil {
			_ = syscall.Unmount(p.mnt, syscall.MNT_DETACH)
		}
	})
	return p
}

// sh runs a shell command as uid and returns its output and error text.
func sh(t *testing.T, uid uint32, script string) (string, error) {
	t.Helper()
	cmd := exec.Command("sh", "-c", script)
	asUID(cmd, uid)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("%v: %s", err, errb.String())
	}
	return out.String(), nil
}

func TestMountDecidesByUID(t *testing.T) {
	p := newProject(t, "s3cr3t")
	tok := filepath.Join(p.mnt, "secrets", "TOKEN")

	if out, err := sh(t, 0, "ls "+p.mnt); err != nil || strings.Fields(out)[0] != "aliases" || !strings.Contains(out, "secrets") {
		t.Fatalf("ls of the mount as root: %q %v", out, err)
	}
	if out, err := sh(t, uidAlice, "cat "+tok); err != nil || out != "s3cr3t" {
		t.Errorf("developer reads the secret: %q %v", out, err)
	}
	if out, err := sh(t, uidBob, "ls "+filepath.Join(p.mnt, "secrets")); err != nil || strings.TrimSpace(out) != "TOKEN" {
		t.Errorf("viewer lists the secrets: %q %v", out, err)
	}
	if out, err := sh(t, uidBob, "cat "+tok); err == nil || !strings.Contains(err.Error(), "Permission denied") {
		t.Errorf("viewer cats the secret: %q %v, want Permission denied", out, err)
	}
	if out, err := sh(t, uidEve, "ls "+filepath.Join(p.mnt, "secrets")); err == nil || strings.Contains(out, "TOKEN") {
		t.Errorf("an unregistered uid lists the secrets: %q %v", out, err)
	}
	if out, err := sh(t, uidEve, "cat "+tok); err == nil || strings.Contains(out, "s3cr3t") {
		t.Errorf("an unregistered uid reads the secret: %q %v", out, err)
	}

	// Writes through the mount are the CLI's actions under the same rules.
	if _, err := sh(t, uidAlice, "printf fresh > "+filepath.Join(p.mnt, "secrets", "NEW_ONE")); err != nil {
		t.Fatalf("developer writes a secret: %v", err)
	}
	if out := p.ok(0, "secret", "list", projectPath); !strings.Contains(out, "NEW_ONE") || !strings.Contains(out, "alice") {
		t.Errorf("the secret written through the mount is not in the CLI's list (created by alice):\n%s", out)
	}
	if env := p.ok(uidAlice, "exec", projectPath, "--", "printenv", "NEW_ONE"); env != "fresh\n" {
		t.Errorf("exec sees %q", env)
	}
	if _, err := sh(t, uidBob, "printf evil > "+filepath.Join(p.mnt, "secrets", "EVIL")); err == nil || !strings.Contains(err.Error(), "Permission denied") {
		t.Errorf("viewer writes a secret: %v, want Permission denied", err)
	}
	if _, err := sh(t, uidBob, "rm "+filepath.Join(p.mnt, "secrets", "NEW_ONE")); err == nil {
		t.Errorf("viewer deleted a secret")
	}
	if _, err := sh(t, uidAlice, "printf x > "+filepath.Join(p.mnt, "secrets", "bad-name")); err == nil || !strings.Contains(err.Error(), "Invalid argument") {
		t.Errorf("a bad secret name through the mount: %v, want Invalid argument", err)
	}
	if _, err := sh(t, uidAlice, "rm "+filepath.Join(p.mnt, "secrets", "NEW_ONE")); err != nil {
		t.Errorf("developer deletes a secret: %v", err)
	}
	if out := p.ok(0, "secret", "list", projectPath); strings.Contains(out, "NEW_ONE") {
		t.Errorf("rm through the mount did not delete the secret:\n%s", out)
	}
	p.fails(uidBob, 3, "permission denied", "exec", projectPath, "--", "true")
}

// A revoked developer's next cat, and the next read of a file already open,
// fail within a second of the revocation being acknowledged.
func TestRevocationTakesEffectWithinASecond(t *testing.T) {
	p := newProject(t, "s3cr3t")
	tok := filepath.Join(p.mnt, "secrets", "TOKEN")
	// A reader that opens the secret, reads it, then reads again from the
	// start each time it is told to, on the same open file.
	reader := exec.Command("/usr/bin/python3", "-u", "-c", `
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
for line in sys.stdin:
    try:
        print("ok", os.pread(fd, 100, 0).decode(), flush=True)
    except OSError as e:
        print("err", e.errno, flush=True)
`, tok)
	asUID(reader, uidAlice)
	stdin, _ := reader.StdinPipe()
	stdout, _ := reader.StdoutPipe()
	reader.Stderr = os.Stderr
	if err := reader.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); _ = reader.Wait() })
	lines := bufio.NewScanner(stdout)
	readOpen := func() string {
		fmt.Fprintln(stdin, "read")
		if !lines.Scan() {
			t.Fatal("the reader died")
		}
		return lines.Text()
	}
	if got := readOpen(); got != "ok s3cr3t" {
		t.Fatalf("first read of the open file: %q", got)
	}

	p.ok(0, "role", "revoke", "datasphere.community-projects.developer", "--from", "user:alice", "--on", "project:"+projectPath)
	revoked := time.Now()
	if got := readOpen(); got != fmt.Sprintf("err %d", syscall.EACCES) {
		t.Errorf("read of the already open file after revocation: %q, want EACCES", got)
	}
	if _, err := sh(t, uidAlice, "cat "+tok); err == nil {
		t.Errorf("cat after revocation succeeded")
	}
	if d := time.Since(revoked); d > time.Second {
		t.Errorf("revocation took %v to take effect", d)
	}
}

// kill -9 of the daemon with a busy mount: after restart the mount is back
// and works, and no "Transport endpoint is not connected" remains.
func TestMountComesBackAfterKill9(t *testing.T) {
	p := newProject(t, "s3cr3t")
	busy := exec.Command("sh", "-c", "cd "+p.mnt+"/secrets && exec sleep 600")
	if err := busy.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = busy.Process.Kill(); _ = busy.Wait() })
	if _, err := os.Stat(filepath.Join(p.mnt, "secrets", "TOKEN")); err != nil {
		t.Fatal(err)
	}
	p.kill9()
	_, err := os.Stat(filepath.Join(p.mnt, "secrets"))
	if !errorsIs(err, syscall.ENOTCONN) {
		t.Logf("after kill -9 the mount answers %v (expected ENOTCONN)", err)
	}
	p.restart()
	if out, err := sh(t, uidAlice, "cat "+filepath.Join(p.mnt, "secrets", "TOKEN")); err != nil || out != "s3cr3t" {
		t.Fatalf("after restart: %q %v", out, err)
	}
	if out := p.ok(0, "mount"); !strings.Contains(out, p.mnt) || !strings.Contains(out, projectPath) {
		t.Errorf("mount list after restart:\n%s", out)
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	if n := strings.Count(string(mounts), " "+p.mnt+" "); n != 1 {
		t.Errorf("%s appears %d times in mountinfo, want exactly one live mount", p.mnt, n)
	}
}

func errorsIs(err error, target syscall.Errno) bool {
	var pe *fs.PathError
	if e, ok := err.(*fs.PathError); ok {
		pe = e
	}
	return pe != nil && pe.Err == target
}

// The canary: a secret's value appears nowhere on disk, in logs or in the
// audit log, even after a snapshot and a restart.
func TestSecretNeverOnDisk(t *testing.T) {
	canary := fmt.Sprintf("canary-%d-value", time.Now().UnixNano())
	p := newProject(t, canary)
	if out, err := sh(t, uidAlice, "cat "+filepath.Join(p.mnt, "secrets", "TOKEN")); err != nil || out != canary {
		t.Fatalf("read: %q %v", out, err)
	}
	if out := p.ok(uidAlice, "exec", projectPath, "--", "printenv", "TOKEN"); out != canary+"\n" {
		t.Fatalf("exec: %q", out)
	}
	sh(t, uidBob, "cat "+filepath.Join(p.mnt, "secrets", "TOKEN"))
	p.ok(0, "cluster", "snapshot")
	p.stop()
	p.restart()
	p.ok(0, "cluster", "snapshot")
	forms := [][]byte{[]byte(canary), []byte(base64.StdEncoding.EncodeToString([]byte(canary)))}
	err := filepath.WalkDir(p.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path == p.mnt || strings.HasPrefix(path, p.mnt+"/") {
			return nil
		}
		if d.Type()&fs.ModeSocket != 0 {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, f := range forms {
			if bytes.Contains(data, f) {
				t.Errorf("the secret's value is in %s", path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range forms {
		if bytes.Contains(p.log.Bytes(), f) {
			t.Errorf("the secret's value is in the daemon's log")
		}
	}
	// The audit log has the reads, allowed and denied, and who made them.
	records := auditRecords(t, filepath.Join(p.dataDir, "audit.log"))
	var allowed, denied bool
	for _, r := range records {
		if strings.HasSuffix(r.Path, "secrets/TOKEN") && r.UID == uidAlice && r.Decision == "allow" && r.Binding != "" {
			allowed = true
		}
		if strings.HasSuffix(r.Path, "secrets/TOKEN") && r.UID == uidBob && r.Decision == "deny" && r.Missing != "" {
			denied = true
		}
	}
	if !allowed || !denied {
		t.Errorf("audit log lacks alice's allowed read (%v) or bob's denied one (%v): %+v", allowed, denied, records)
	}
}

type auditRecord struct {
	Time      time.Time `json:"time"`
	UID       uint32    `json:"uid"`
	Principal string    `json:"principal"`
	Action    string    `json:"action"`
	Path      string    `json:"path"`
	Decision  string    `json:"decision"`
	Binding   string    `json:"binding"`
	Missing   string    `json:"missing"`
}

func auditRecords(t *testing.T, path string) []auditRecord {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []auditRecord
	dec := json.NewDecoder(f)
	for {
		var r auditRecord
		if err := dec.Decode(&r); err == io.EOF {
			return out
		} else if err != nil {
			t.Fatalf("audit log is not JSON lines: %v", err)
		}
		out = append(out, r)
	}
}

// Mounting needs developer on the project and a directory of one's own.
func TestMountPermissions(t *testing.T) {
	p := newProject(t, "v")
	own := filepath.Join(p.dir, "alice-mnt")
	if err := os.Mkdir(own, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(own, int(uidAlice), int(uidAlice)); err != nil {
		t.Fatal(err)
	}
	p.fails(uidBob, 3, "permission denied", "mount", projectPath, filepath.Join(p.dir, "bob-mnt"))
	p.fails(uidAlice, 3, "belongs to uid 0", "mount", projectPath, filepath.Join(p.dir, "data"))
	p.ok(uidAlice, "mount", projectPath, own)
	p.fails(uidBob, 3, "permission denied", "umount", own)
	if out, err := sh(t, uidAlice, "cat "+own+"/secrets/TOKEN"); err != nil || out != "v" {
		t.Errorf("alice's own mount: %q %v", out, err)
	}
	p.ok(uidAlice, "umount", own)
	if out := p.ok(0, "mount"); strings.Contains(out, own) {
		t.Errorf("umount left %s in the list:\n%s", own, out)
	}
}
