// Package miniotest runs a real single-drive MinIO server for tests and
// benchmarks: a child process on a free 127.0.0.1 port with its data in a
// temporary directory, stopped when the test ends.
//
// The binary comes from $SPHERE_MINIO_BIN, or else from the repository's
// `scripts/minio.sh path` (which builds and caches it on first use).
package miniotest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/sphere-sandbox/sphere/internal/testwait"
)

// Credentials every server started here uses (the same defaults as
// scripts/minio.sh).
const (
	AccessKey = "sphereadmin"
	SecretKey = "spheresecret"
)

// startTimeout bounds how long a fresh server may take to answer its
// health check; a cold start on a loaded 2-core machine takes a few seconds.
const startTimeout = 60 * time.Second

// Server is one running MinIO process.
type Server struct {
	Endpoint  string // http://127.0.0.1:PORT
	AccessKey string
	SecretKey string
	Dir       string // data directory

	cmd    *exec.Cmd
	exited chan struct{} // closed when the process has been reaped
	log    *bytes.Buffer // the server's combined output, for failure reports
	mu     sync.Mutex    // guards paused
	paused bool
}

// Start launches a server for t and registers its shutdown with t.Cleanup.
// It fails t if the binary cannot be found or the server does not come up.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatalf("miniotest: %v", err)
	}
	s, err := Launch(bin, t.TempDir())
	if err != nil {
		t.Fatalf("miniotest: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// Binary finds the MinIO server binary: $SPHERE_MINIO_BIN, else the output
// of scripts/minio.sh path in the enclosing repository.
func Binary() (string, error) {
	if p := os.Getenv("SPHERE_MINIO_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("SPHERE_MINIO_BIN: %w", err)
		}
		return p, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		script := filepath.Join(dir, "scripts", "minio.sh")
		if _, err := os.Stat(script); err == nil {
			out, err := exec.Command(script, "path").Output()
			if err != nil {
				return "", fmt.Errorf("%s path: %w", script, err)
			}
			return strings.TrimSpace(string(out)), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no MinIO binary: set SPHERE_MINIO_BIN or run inside the sphere repository (scripts/minio.sh)")
		}
		dir = parent
	}
}

// Launch starts bin as a single-drive server with its data under dir and
// waits until it is healthy. The caller must Stop it.
func Launch(bin, dir string) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	s := &Server{
		Endpoint:  "http://" + addr,
		AccessKey: AccessKey,
		SecretKey: SecretKey,
		Dir:       dir,
		exited:    make(chan struct{}),
		log:       new(bytes.Buffer),
	}
	s.cmd = exec.Command(bin, "server", "--quiet", "--address", addr, filepath.Join(dir, "data"))
	// See scripts/minio.sh: CI_CD lets the drive sit on the root
	// filesystem; _MINIO_SERVER_LOCAL keeps MinIO from waiting for DNS
	// inside containers.
	s.cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+AccessKey, "MINIO_ROOT_PASSWORD="+SecretKey,
		"MINIO_CI_CD=1", "MINIO_BROWSER=off", "MINIO_UPDATE=off",
		"_MINIO_SERVER_LOCAL="+addr)
	s.cmd.Stdout = syncWriter{&s.mu, s.log}
	s.cmd.Stderr = s.cmd.Stdout
	// Its own process group, so a Ctrl-C meant for the test binary does
	// not kill the server before cleanup runs.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() {
		_ = s.cmd.Wait()
		close(s.exited)
	}()
	if err := s.waitHealthy(); err != nil {
		s.Kill()
		return nil, err
	}
	return s, nil
}

// freePort asks the kernel for a port nobody listens on. MinIO binds with
// SO_REUSEPORT, so a race with another process is possible but unlikely.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitHealthy polls the liveness endpoint until it answers 200, the
// process exits, or startTimeout passes.
func (s *Server) waitHealthy() error {
	deadline := time.Now().Add(startTimeout)
	hc := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := hc.Get(s.Endpoint + "/minio/health/live")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.exited:
			return fmt.Errorf("MinIO exited during start-up: %s", s.Output())
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("MinIO not healthy at %s after %v: %s", s.Endpoint, startTimeout, s.Output())
		}
	}
}

// Output is what the server has printed so far.
func (s *Server) Output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

// Client is a minio-go client for the server, as root.
func (s *Server) Client() *minio.Client {
	c, err := minio.New(strings.TrimPrefix(s.Endpoint, "http://"), &minio.Options{
		Creds: credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
	})
	if err != nil {
		// Only a malformed endpoint fails here, and ours is built above.
		panic(err)
	}
	return c
}

// MakeBucket creates a bucket, failing t on error.
func (s *Server) MakeBucket(t testing.TB, name string) {
	t.Helper()
	if err := s.Client().MakeBucket(context.Background(), name, minio.MakeBucketOptions{}); err != nil {
		t.Fatalf("miniotest: make bucket %s: %v", name, err)
	}
}

// Kill stops the server with SIGKILL, as a crash would, and waits until
// the process is gone. A paused server is killed too.
func (s *Server) Kill() {
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.exited
}

// Stop shuts the server down (SIGTERM, then SIGKILL after 10 s) and waits
// for it. It is safe to call more than once and after Kill.
func (s *Server) Stop() {
	s.Resume() // a stopped process never handles SIGTERM
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		s.Kill()
	}
}

// Pause freezes the server with SIGSTOP: connections are still accepted by
// the kernel but nothing answers, which is what a stalled server looks like.
// It returns once every thread of the server has stopped: the signal is
// delivered asynchronously, and a request sent before that could still be
// answered.
func (s *Server) Pause(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = s.cmd.Process.Signal(syscall.SIGSTOP)
	s.paused = true
	pid := s.cmd.Process.Pid
	testwait.For(t, 10*time.Second, fmt.Sprintf("MinIO (pid %d) to stop after SIGSTOP", pid), func() bool { return allStopped(pid) })
}

// allStopped reports whether every thread of the process pid is stopped.
func allStopped(pid int) bool {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return false
	}
	for _, task := range tasks {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, task.Name()))
		if err != nil {
			continue // the thread has exited
		}
		// "TID (COMM) STATE ...": COMM may hold spaces and parentheses.
		i := bytes.LastIndexByte(data, ')')
		if i < 0 || i+2 >= len(data) || (data[i+2] != 'T' && data[i+2] != 't') {
			return false
		}
	}
	return true
}

// Resume undoes Pause (SIGCONT).
func (s *Server) Resume() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.paused {
		_ = s.cmd.Process.Signal(syscall.SIGCONT)
		s.paused = false
	}
}

// syncWriter serializes the server's stdout and stderr into one buffer.
type syncWriter struct {
	mu  *sync.Mutex
	buf *bytes.Buffer
}

func (w syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}
