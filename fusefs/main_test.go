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
		spool, err := os.MkdirTemp("", "fusefs-spool-")
		if err != nil {
			fmt.Println("spool:", err)
			return 1
		}
		fx := newFixture(spool, "")
		if _, err := Mount(arg, fx.tree(), MountOptions{}); err != nil {
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

// The contents of the fixture's datasets and buckets.
const (
	catsFile   = "hello from cats\n" // datasets/cats/a.txt
	fishFile   = "1,2,3\n"           // datasets/fish/deep/er/c.csv
	dogsFile   = "woof\n"            // datasets/dogs/readme.txt
	objectFile = "object data\n"     // s3/bucket/top.txt and s3/bucket/data/x.csv
)

// fixture is a project's store with its datasets and buckets.
type fixture struct {
	store    *fake.Store
	audit    *fake.Auditor
	datasets *fake.Datasets
	buckets  *fake.Buckets
	// The resources' IDs.
	cats, fish, dogs              policy.ID
	bucket, archive, off, sharedB policy.ID
}

// newFixture: secrets TOKEN, SHARED (published) and HIDDEN; datasets cats
// (initializing, with a.txt), fish (sealed, with deep/er/c.csv) and dogs
// (published, with readme.txt); connectors bucket (read-write, with top.txt
// and data/x.csv), archive (read-only, with old.txt), shared (published)
// and off (not activated). Writes spool to spool; with local, the datasets'
// contents are local files there (passthrough).
func newFixture(spool, local string) *fixture {
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
	f := &fixture{store: s, audit: &fake.Auditor{}, datasets: fake.NewDatasets(spool, local), buckets: fake.NewBuckets()}
	f.cats = s.Add(vfs.KindDataset, "cats", false)
	f.fish = s.Add(vfs.KindDataset, "fish", false)
	f.dogs = s.Add(vfs.KindDataset, "dogs", true)
	f.bucket = s.Add(vfs.KindS3, "bucket", false)
	f.archive = s.Add(vfs.KindS3, "archive", false)
	f.sharedB = s.Add(vfs.KindS3, "shared", true)
	f.off = s.Add(vfs.KindS3, "off", false)
	s.SetActive("off", false)
	s.Allow(104, policy.ActViewProject, policy.Target{ID: project})
	s.Allow(104, policy.ActViewResource, policy.Target{ID: token})

	f.datasets.Put(f.cats, "a.txt", []byte(catsFile))
	f.datasets.Put(f.fish, "deep/er/c.csv", []byte(fishFile))
	f.datasets.Seal(f.fish)
	f.datasets.Put(f.dogs, "readme.txt", []byte(dogsFile))
	f.buckets.Of(f.bucket).Put("top.txt", []byte(objectFile))
	f.buckets.Of(f.bucket).Put("data/x.csv", []byte(objectFile))
	f.buckets.Of(f.archive).Put("old.txt", []byte(objectFile))
	f.buckets.Of(f.archive).SetReadOnly(true)
	f.buckets.Of(f.sharedB).Put("pub.txt", []byte(objectFile))
	return f
}

func (f *fixture) tree() *vfs.Tree {
	return vfs.New(f.store, f.audit, project, "acme/cats/p1", vfs.WithDatasets(f.datasets), vfs.WithBuckets(f.buckets))
}

type testMount struct {
	*fixture
	dir string
}

// newTestMount mounts a fixture tree in a fresh directory every uid can
// reach, and unmounts it when the test ends, failed or not. The datasets'
// contents are local files (passthrough) unless opts.NoPassthrough.
func newTestMount(t testing.TB, opts MountOptions) *testMount {
	t.Helper()
	base := t.TempDir()
	for _, d := range []string{filepath.Dir(base), base} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(base, "mnt")
	spool := filepath.Join(base, "spool")
	local := filepath.Join(base, "local")
	for _, d := range []string{dir, spool, local} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	fx := newFixture(spool, local)
	m, err := Mount(dir, fx.tree(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Unmount(); err != nil {
			t.Errorf("%v; detaching it", err)
			unix.Unmount(dir, unix.MNT_DETACH)
		}
	})
	return &testMount{fixture: fx, dir: dir}
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
