package fusefs

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// mounted reports whether dir is a mount point.
func mounted(t *testing.T, dir string) bool {
	t.Helper()
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(mounts), "\n") {
		if f := strings.Fields(l); len(f) > 4 && f[4] == dir {
			return true
		}
	}
	return false
}

// TestCleanStale kills a server that has mounted a tree, as kill -9 of the
// daemon would, and checks that CleanStale detaches the dead mount it left.
func TestCleanStale(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if mounted(t, dir) {
			unix.Unmount(dir, unix.MNT_DETACH)
		}
	})

	server := exec.Command(helperBin, dir)
	server.Env = []string{helperEnv + "=serve"}
	out, err := server.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		server.Process.Kill()
		server.Wait()
	})
	if line, err := bufio.NewReader(out).ReadString('\n'); line != "ready\n" {
		t.Fatalf("server: %q, %v", line, err)
	}
	if err := CleanStale(dir); err != nil || !mounted(t, dir) {
		t.Fatalf("CleanStale of a healthy mount: %v; mounted %v", err, mounted(t, dir))
	}

	server.Process.Signal(syscall.SIGKILL)
	server.Wait() // the server's /dev/fuse is closed once it has exited
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); !errors.Is(err, unix.ENOTCONN) {
		t.Fatalf("stat of the dead mount: %v, want ENOTCONN", err)
	}

	if err := CleanStale(dir); err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat(dir, &st); err != nil {
		t.Fatalf("stat after CleanStale: %v", err)
	}
	if mounted(t, dir) {
		t.Error("still a mount point after CleanStale")
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 0 {
		t.Errorf("the directory under the mount: %v, %v", entries, err)
	}

	// What is not a dead mount is left alone.
	if err := CleanStale(dir); err != nil {
		t.Errorf("CleanStale of a plain directory: %v", err)
	}
	if err := CleanStale(filepath.Join(dir, "missing")); err != nil {
		t.Errorf("CleanStale of a missing directory: %v", err)
	}
}
