package fusefs

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sphere-sandbox/sphere/fusefs/internal/fake"
	"github.com/sphere-sandbox/sphere/fusefs/vfs"
	"github.com/sphere-sandbox/sphere/policy"
)

// The test binary doubles as the helper programs the tests run in other
// processes, chosen by helperEnv: a server to kill, and a reader acting as
// another uid.
const helperEnv = "FUSEFS_TEST_HELPER"

// helperBin is a copy of the test binary any uid can run (go test builds it
// in a directory only root may enter).
var helperBin string

func TestMain(m *testing.M) {
	if role := os.Getenv(helperEnv); role != "" {
		os.Exit(runHelper(role, os.Args[len(os.Args)-1]))
	}
	dir, err := os.MkdirTemp("", "fusefs-helper-")
	if err == nil {
		err = copyExecutable(dir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fusefs tests: helper binary:", err)
		os.Exit(2)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func copyExecutable(dir string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	src, err := os.Open(self)
	if err != nil {
		return err
	}
	defer src.Close()
	helperBin = filepath.Join(dir, "helper")
	dst, err := os.OpenFile(helperBin, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	if err := dst.Close(); err != nil {
		return err
	}
	return os.Chmod(dir, 0o755)
}

// runHelper plays role with arg:
//   - "serve": mount a test tree at arg, say "ready" and serve until killed;
//   - "reader": open the file arg, read it, say what came back, wait for a
//     line on stdin, read it again through the same descriptor, say what
//     came back, exit.
func runHelper(role, arg string) int {
	switch role {
	case "serve":
		store, audit := newFixture()
		if _, err := Mount(arg, vfs.New(store, audit, project, "acme/cats/p1"), MountOptions{}); err != nil {
			fmt.Println("mount:", err)
			return 1
		}
		fmt.Println("ready")
		select {}
	case "reader":
		f, err := os.Open(arg)
		if err != nil {
			fmt.Println(result(nil, err))
			return 1
		}
		defer f.Close()
		buf := make([]byte, 1024)
		n, err := f.ReadAt(buf, 0)
		fmt.Println(result(buf[:n], err))
		if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
			return 1
		}
		n, err = f.ReadAt(buf, 0)
		fmt.Println(result(buf[:n], err))
		return 0
	}
	return 2
}

// result says what a read returned: "ok VALUE" or the errno's number.
func result(data []byte, err error) string {
	var errno syscall.Errno
	switch {
	case err == nil || errors.Is(err, io.EOF):
		return "ok " + string(data)
	case errors.As(err, &errno):
		return fmt.Sprintf("errno %d", int(errno))
	default:
		return "error " + err.Error()
	}
}

const project policy.ID = 500

// The uids of the tests, and their principals in the fixture.
const (
	rootUID  = 0    // developer, as the test process itself
	aliceUID = 1001 // developer
	bobUID   = 1002 // viewer
	anonUID  = 1003 // not registered
	carolUID = 1004 // may view the project and the secret TOKEN only
)

const tokenValue = "s3cr3t-value"

// newFixture: secrets TOKEN, SHARED (published) and HIDDEN; datasets cats
// and dogs (published); connector bucket.
func newFixture() (*fake.Store, *fake.Auditor) {
	s := fake.NewStore(project)
	s.AddUser(rootUID, policy.Bootstrap, "root")
	s.AddUser(aliceUID, 101, "alice")
	s.AddUser(bobUID, 102, "bob")
	s.AddUser(carolUID, 104, "carol")
	s.Grant(policy.Bootstrap, fake.Developer)
	s.Grant(101, fake.Developer)
	s.Grant(102, fake.Viewer)
	token := s.SetSecret("TOKEN", tokenValue, false)
	s.SetSecret("SHARED", "published-value", true)
	s.SetSecret("HIDDEN", "hidden-value", false)
	s.Add(vfs.KindDataset, "cats", false)
	s.Add(vfs.KindDataset, "dogs", true)
	s.Add(vfs.KindS3, "bucket", false)
	s.Allow(104, policy.ActViewProject, policy.Target{ID: project})
	s.Allow(104, policy.ActViewResource, policy.Target{ID: token})
	return s, &fake.Auditor{}
}

type testMount struct {
	dir   string
	store *fake.Store
	audit *fake.Auditor
}

// newTestMount mounts a fixture tree in a fresh directory every uid can
// reach, and unmounts it when the test ends, failed or not.
func newTestMount(t *testing.T, opts MountOptions) *testMount {
	t.Helper()
	base := t.TempDir()
	for _, d := range []string{filepath.Dir(base), base} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(base, "mnt")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	store, audit := newFixture()
	m, err := Mount(dir, vfs.New(store, audit, project, "acme/cats/p1"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Unmount(); err != nil {
			t.Errorf("%v; detaching it", err)
			unix.Unmount(dir, unix.MNT_DETACH)
		}
	})
	return &testMount{dir: dir, store: store, audit: audit}
}

func (tm *testMount) path(p string) string { return filepath.Join(tm.dir, p) }

// runAs runs a command as uid (and gid uid), in the C locale so that its
// messages can be matched, and returns its combined output.
func runAs(t *testing.T, uid uint32, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = "/"
	cmd.Env = []string{"LC_ALL=C", "PATH=/usr/bin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// mustRunAs is runAs for a command that must succeed.
func mustRunAs(t *testing.T, uid uint32, name string, args ...string) string {
	t.Helper()
	out, err := runAs(t, uid, name, args...)
	if err != nil {
		t.Fatalf("uid %d: %s %q: %v: %s", uid, name, args, err, out)
	}
	return out
}

// failAs is runAs for a command that must fail with a message containing want.
func failAs(t *testing.T, uid uint32, want string, name string, args ...string) {
	t.Helper()
	out, err := runAs(t, uid, name, args...)
	if err == nil || !strings.Contains(out, want) {
		t.Errorf("uid %d: %s %q: got %v: %q, want failure with %q", uid, name, args, err, out, want)
	}
}
