package fusefs

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sphere-sandbox/sphere/fusefs/vfs"
	"github.com/sphere-sandbox/sphere/policy"
)

func TestDeveloperReadsAndSeesTheirRights(t *testing.T) {
	tm := newTestMount(t, MountOptions{FsName: "sphere:acme/cats/p1"})
	if got := mustRunAs(t, aliceUID, "cat", tm.path("secrets/TOKEN")); got != tokenValue {
		t.Errorf("cat: %q, want %q", got, tokenValue)
	}
	if got := mustRunAs(t, aliceUID, "ls", tm.dir); got != "aliases\ndataproc-templates\ndatasets\nimages\nmodels\nnodes\ns3\nsecrets" {
		t.Errorf("ls of the root: %q", got)
	}
	if got := mustRunAs(t, aliceUID, "ls", tm.path("secrets")); got != "HIDDEN\nSHARED\nTOKEN" {
		t.Errorf("ls secrets: %q", got)
	}
	for _, tc := range []struct {
		uid  uint32
		path string
		want string // mode uid gid size
	}{
		{aliceUID, "secrets/TOKEN", fmt.Sprintf("600 1001 1001 %d", len(tokenValue))},
		{aliceUID, "secrets/SHARED", "400 1001 1001 15"},
		{aliceUID, "secrets", "755 1001 1001 0"},
		{aliceUID, "s3", "555 1001 1001 0"},
		{aliceUID, "datasets/cats", "755 1001 1001 0"},
		{bobUID, "datasets/cats", "555 1002 1002 0"},
		{aliceUID, "datasets/fish", "555 1001 1001 0"}, // sealed
		{aliceUID, "datasets/fish/deep/er/c.csv", "444 0 0 6"},
		{aliceUID, "datasets/cats/a.txt", "644 1001 1001 16"},
		{bobUID, "datasets/cats/a.txt", "0 1002 1002 16"},
		{aliceUID, "datasets/dogs/readme.txt", "444 1001 1001 5"},
		{aliceUID, "s3/bucket", "755 1001 1001 0"},
		{aliceUID, "s3/archive", "555 1001 1001 0"},
		{aliceUID, "s3/bucket/top.txt", "644 0 0 12"},
		{aliceUID, "s3/archive/old.txt", "444 0 0 12"},
		{aliceUID, "s3/shared/pub.txt", "444 0 0 12"},
		{bobUID, "secrets/TOKEN", "0 1002 1002 0"},
		{bobUID, "secrets", "555 1002 1002 0"},
		{bobUID, ".", "555 1002 1002 0"},
		{anonUID, ".", "0 1003 1003 0"},
	} {
		// One stat right after another uid's: no kernel cache answers for the caller.
		if got := mustRunAs(t, tc.uid, "stat", "-c", "%a %u %g %s", tm.path(tc.path)); got != tc.want {
			t.Errorf("uid %d stat %s: %q, want %q", tc.uid, tc.path, got, tc.want)
		}
	}
	var st unix.Statfs_t
	if err := unix.Statfs(tm.dir, &st); err != nil || st.Namelen != vfs.MaxNameLen {
		t.Errorf("statfs: %v, namelen %d", err, st.Namelen)
	}
}

func TestViewerListsButCannotRead(t *testing.T) {
	tm := newTestMount(t, MountOptions{})
	if got := mustRunAs(t, bobUID, "ls", tm.path("secrets")); got != "HIDDEN\nSHARED\nTOKEN" {
		t.Errorf("ls secrets: %q", got)
	}
	tm.audit.Take()
	failAs(t, bobUID, "Permission denied", "cat", tm.path("secrets/TOKEN"))
	var denied bool
	for _, e := range tm.audit.Take() {
		if e.UID == bobUID && e.Path == "secrets/TOKEN" && e.Action == "use-resource" && !e.Allowed {
			denied = true
		}
	}
	if !denied {
		t.Error("the denied read is not in the audit")
	}
	failAs(t, bobUID, "Permission denied", "sh", "-c", "echo x > "+tm.path("secrets/TOKEN"))
	failAs(t, bobUID, "Permission denied", "rm", "-f", tm.path("secrets/TOKEN"))
	failAs(t, bobUID, "Permission denied", "sh", "-c", "echo x > "+tm.path("secrets/NEW"))
	if v, _ := tm.store.Secret("TOKEN"); v != tokenValue {
		t.Errorf("a viewer changed the secret: %q", v)
	}
}

func TestUnregisteredSeesNothing(t *testing.T) {
	tm := newTestMount(t, MountOptions{})
	failAs(t, anonUID, "Permission denied", "ls", tm.dir)
	failAs(t, anonUID, "Permission denied", "ls", tm.path("secrets"))
	failAs(t, anonUID, "Permission denied", "cat", tm.path("secrets/TOKEN"))
	failAs(t, anonUID, "Permission denied", "env", "--chdir="+tm.dir, "true")
}

// What a caller may not view does not exist for it, even right after
// another uid looked it up: the kernel keeps no entry for anyone.
func TestHiddenEntriesAreNotServedFromAnotherCallersLookup(t *testing.T) {
	tm := newTestMount(t, MountOptions{})
	mustRunAs(t, aliceUID, "stat", tm.path("secrets/HIDDEN"))
	failAs(t, carolUID, "No such file or directory", "stat", tm.path("secrets/HIDDEN"))
	if got := mustRunAs(t, carolUID, "ls", tm.path("secrets")); got != "TOKEN" {
		t.Errorf("carol lists %q, want only TOKEN", got)
	}
	// And the other way round: a negative answer for carol is not one for alice.
	mustRunAs(t, aliceUID, "stat", tm.path("secrets/HIDDEN"))
}

func TestRevocationTakesEffectOnTheNextOperation(t *testing.T) {
	tm := newTestMount(t, MountOptions{})
	reader := exec.Command(helperBin, tm.path("secrets/TOKEN"))
	reader.Env = []string{helperEnv + "=reader"}
	reader.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: aliceUID, Gid: aliceUID}}
	stdin, err := reader.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := reader.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := reader.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		reader.Process.Kill()
		reader.Wait()
	})
	lines := bufio.NewScanner(stdout)
	next := func() string {
		if !lines.Scan() {
			t.Fatalf("reader ended: %v", lines.Err())
		}
		return lines.Text()
	}
	if got := next(); got != "ok "+tokenValue {
		t.Fatalf("first read: %q", got)
	}

	tm.store.Revoke(101, []policy.Action{policy.ActUseResource})

	failAs(t, aliceUID, "Permission denied", "cat", tm.path("secrets/TOKEN"))
	if _, err := stdin.Write([]byte("again\n")); err != nil {
		t.Fatal(err)
	}
	if got, want := next(), fmt.Sprintf("errno %d", int(syscall.EACCES)); got != want {
		t.Errorf("read of the file already open after revocation: %q, want %q", got, want)
	}
	if err := reader.Wait(); err != nil {
		t.Errorf("reader: %v", err)
	}
	// What the revoked developer still may do as a viewer: see the file, read nothing.
	if got := mustRunAs(t, aliceUID, "stat", "-c", "%a", tm.path("secrets/TOKEN")); got != "200" {
		t.Errorf("mode after revoking use: %s, want 200", got)
	}
}

func TestWritingCreatesReplacesAndDeletes(t *testing.T) {
	tm := newTestMount(t, MountOptions{})
	secret := func(name string) string {
		t.Helper()
		v, ok := tm.store.Secret(name)
		if !ok {
			t.Fatalf("secret %s does not exist", name)
		}
		return v
	}
	mustRunAs(t, aliceUID, "sh", "-c", "echo hello > "+tm.path("secrets/NEW_ONE"))
	if v := secret("NEW_ONE"); v != "hello\n" {
		t.Errorf("created %q", v)
	}
	mustRunAs(t, aliceUID, "sh", "-c", "echo bye > "+tm.path("secrets/NEW_ONE"))
	if v := secret("NEW_ONE"); v != "bye\n" {
		t.Errorf("replaced: %q", v)
	}
	mustRunAs(t, aliceUID, "sh", "-c", "echo more >> "+tm.path("secrets/NEW_ONE"))
	if v := secret("NEW_ONE"); v != "bye\nmore\n" {
		t.Errorf("appended: %q", v)
	}
	if got := mustRunAs(t, aliceUID, "cat", tm.path("secrets/NEW_ONE")); got != "bye\nmore" {
		t.Errorf("read back %q", got)
	}
	mustRunAs(t, aliceUID, "truncate", "-s", "3", tm.path("secrets/NEW_ONE"))
	if v := secret("NEW_ONE"); v != "bye" {
		t.Errorf("truncated: %q", v)
	}
	mustRunAs(t, aliceUID, "touch", tm.path("secrets/EMPTY"))
	if v := secret("EMPTY"); v != "" {
		t.Errorf("touched: %q", v)
	}
	mustRunAs(t, aliceUID, "rm", tm.path("secrets/NEW_ONE"))
	if tm.store.Has(vfs.KindSecret, "NEW_ONE") {
		t.Error("rm left the secret")
	}

	failAs(t, aliceUID, "Invalid argument", "sh", "-c", "echo x > "+tm.path("secrets/bad.name"))
	failAs(t, aliceUID, "Invalid argument", "sh", "-c", "echo x > "+tm.path("secrets/1ABC"))
	failAs(t, aliceUID, "Read-only file system", "sh", "-c", "echo x > "+tm.path("secrets/SHARED"))
	failAs(t, aliceUID, "Read-only file system", "rm", tm.path("secrets/SHARED"))
	failAs(t, aliceUID, "File too large", "sh", "-c", fmt.Sprintf("head -c %d /dev/zero > %s", vfs.MaxSecretSize+1, tm.path("secrets/BIG")))
	mustRunAs(t, aliceUID, "sh", "-c", fmt.Sprintf("head -c %d /dev/zero > %s", vfs.MaxSecretSize, tm.path("secrets/BIG")))
	if v := secret("BIG"); len(v) != vfs.MaxSecretSize {
		t.Errorf("the largest secret has %d bytes", len(v))
	}

	mustRunAs(t, aliceUID, "mkdir", tm.path("datasets/birds"))
	if !tm.store.Has(vfs.KindDataset, "birds") {
		t.Error("mkdir did not create the dataset")
	}
	failAs(t, aliceUID, "Invalid argument", "mkdir", tm.path("datasets/Birds"))
	failAs(t, bobUID, "Permission denied", "mkdir", tm.path("datasets/eels"))
	failAs(t, aliceUID, "Read-only file system", "rmdir", tm.path("datasets/dogs"))
	mustRunAs(t, aliceUID, "rmdir", tm.path("datasets/birds"))
	if tm.store.Has(vfs.KindDataset, "birds") {
		t.Error("rmdir left the dataset")
	}
}

// TestNoOperationFallsThroughToENOSYS tries what a user might, as the test
// process (a developer of the project), and checks that each answer is the
// deliberate one.
func TestNoOperationFallsThroughToENOSYS(t *testing.T) {
	tm := newTestMount(t, MountOptions{})
	token := tm.path("secrets/TOKEN")
	for _, tc := range []struct {
		name string
		op   func() error
		want syscall.Errno
	}{
		{"chmod", func() error { return os.Chmod(token, 0o644) }, syscall.EPERM},
		{"chown", func() error { return os.Chown(token, 1001, 1001) }, syscall.EPERM},
		{"chmod of a directory", func() error { return os.Chmod(tm.path("secrets"), 0o700) }, syscall.EPERM},
		{"rename", func() error { return os.Rename(token, tm.path("secrets/OTHER")) }, syscall.EXDEV},
		{"rename of a fixed directory", func() error { return os.Rename(tm.path("secrets"), tm.path("keys")) }, syscall.EPERM},
		{"link", func() error { return os.Link(token, tm.path("secrets/OTHER")) }, syscall.EPERM},
		{"symlink", func() error { return os.Symlink("TOKEN", tm.path("secrets/OTHER")) }, syscall.EPERM},
		{"mknod", func() error { return unix.Mknod(tm.path("secrets/OTHER"), unix.S_IFREG|0o600, 0) }, syscall.EPERM},
		{"mkfifo", func() error { return unix.Mkfifo(tm.path("secrets/OTHER"), 0o600) }, syscall.EPERM},
		{"setxattr", func() error { return unix.Setxattr(token, "user.x", []byte("1"), 0) }, syscall.ENOTSUP},
		{"getxattr", func() error { _, err := unix.Getxattr(token, "user.x", make([]byte, 10)); return err }, syscall.ENOTSUP},
		{"listxattr", func() error { _, err := unix.Listxattr(token, make([]byte, 10)); return err }, syscall.ENOTSUP},
		{"removexattr", func() error { return unix.Removexattr(token, "user.x") }, syscall.ENOTSUP},
		{"mkdir in secrets/", func() error { return os.Mkdir(tm.path("secrets/dir"), 0o755) }, syscall.EPERM},
		{"mkdir at the root", func() error { return os.Mkdir(tm.path("notebooks"), 0o755) }, syscall.EPERM},
		{"file at the root", func() error { return os.WriteFile(tm.path("notes"), nil, 0o600) }, syscall.EPERM},
		{"rmdir of a fixed directory", func() error { return unix.Rmdir(tm.path("secrets")) }, syscall.EPERM},
		{"rmdir of a connector", func() error { return unix.Rmdir(tm.path("s3/bucket")) }, syscall.EPERM},
		{"create in a published dataset", func() error { return os.WriteFile(tm.path("datasets/dogs/f"), nil, 0o600) }, syscall.EROFS},
		{"exec a secret", func() error { return unix.Access(token, unix.X_OK) }, syscall.EACCES},
		{"fallocate", func() error {
			f, err := os.OpenFile(token, os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			return unix.Fallocate(int(f.Fd()), 0, 0, 10)
		}, syscall.EOPNOTSUPP},
		{"O_TMPFILE", func() error {
			fd, err := unix.Open(tm.path("secrets"), unix.O_TMPFILE|unix.O_WRONLY, 0o600)
			if err == nil {
				unix.Close(fd)
			}
			return err
		}, syscall.EOPNOTSUPP},
		{"truncate", func() error { return os.Truncate(token, 4) }, 0},
		{"fsync", func() error {
			f, err := os.OpenFile(token, os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			return f.Sync()
		}, 0},
		{"fsync of a directory", func() error {
			f, err := os.Open(tm.path("secrets"))
			if err != nil {
				return err
			}
			defer f.Close()
			return f.Sync()
		}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.op()
			var got syscall.Errno
			if err != nil && !errors.As(err, &got) {
				t.Fatalf("got %v, not an errno", err)
			}
			if got == syscall.ENOSYS || got != tc.want {
				t.Errorf("got %v (%d), want %v", err, got, tc.want)
			}
		})
	}
	if v, _ := tm.store.Secret("TOKEN"); v != tokenValue[:4] {
		t.Errorf("after truncate: %q", v)
	}
	if tm.store.Has(vfs.KindSecret, "OTHER") {
		t.Error("a refused operation created OTHER")
	}
}

// A store that does not answer in time is EIO, not a hang and not EACCES.
func TestStoreFailureIsEIO(t *testing.T) {
	tm := newTestMount(t, MountOptions{})
	tm.store.Fail(fmt.Errorf("raft: apply: %w", context.DeadlineExceeded))
	_, err := os.ReadFile(tm.path("secrets/TOKEN"))
	if !errors.Is(err, syscall.EIO) {
		t.Errorf("read with the store down: %v, want EIO", err)
	}
}

func TestMountShowsItsName(t *testing.T) {
	tm := newTestMount(t, MountOptions{FsName: "sphere:acme/cats/p1"})
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(mounts), "\n") {
		if strings.Contains(l, " "+tm.dir+" ") {
			if !strings.Contains(l, "fuse.sphere sphere:acme/cats/p1") || !strings.Contains(l, "allow_other") {
				t.Errorf("mountinfo: %s", l)
			}
			return
		}
	}
	t.Errorf("%s is not in mountinfo", tm.dir)
}
