package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// The organization spherebench creates in its sphere daemon: one project,
// the bucket's key as its secret, and the bucket as its connector.
const (
	sphereProject   = "bench/lab/p"
	sphereConnector = "bench"
	sphereKeySecret = "S3_KEY"
	// blobBucket is the bucket of the daemon's blob store, on the same
	// MinIO as the bucket the S3 rows read.
	blobBucket = "sphere-blobs"
)

// sphereStartTimeout bounds how long the daemon may take to answer on its
// socket, and to have restored its mount after a restart.
const sphereStartTimeout = 30 * time.Second

// sphere is the sphere daemon this run starts: a single node on 127.0.0.1
// with its data, socket and chunk cache under work, its dataset blobs in
// blobBucket, and sphereProject mounted at mnt.
type sphere struct {
	bin      string
	dir      string // everything of the daemon but its mount
	socket   string
	cacheDir string
	raftAddr string
	blobs    string // the --blob-store spec
	mnt      string // where sphereProject is mounted
	logPath  string

	cmd    *exec.Cmd
	exited chan error // the server's exit, once; nil while not running
}

// startSphere starts the daemon, creates the project with the bucket as an
// active read-write connector and mounts it. The daemon is stopped (and
// its mount gone) when c runs, also after an error or Ctrl-C.
func startSphere(ctx context.Context, c *cleanups, e *env) (*sphere, error) {
	bin, err := sphereBinary(ctx, e)
	if err != nil {
		return nil, err
	}
	raftAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(e.work, "sphere")
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, err
	}
	mnt, err := mountPoint(c, e, "sphere-mnt")
	if err != nil {
		return nil, err
	}
	s := &sphere{
		bin:      bin,
		dir:      dir,
		socket:   filepath.Join(dir, "sphere.sock"),
		cacheDir: filepath.Join(dir, "cache"),
		raftAddr: raftAddr,
		blobs:    fmt.Sprintf("s3://%s:%s@%s/%s", e.server.AccessKey, e.server.SecretKey, e.host, blobBucket),
		mnt:      mnt,
		logPath:  filepath.Join(dir, "server.log"),
	}
	c.add(s.stop)
	if err := s.start(ctx); err != nil {
		return nil, err
	}
	if err := s.setup(ctx, e); err != nil {
		return nil, err
	}
	return s, nil
}

// sphereBinary is --sphere, or else bin/sphere if it exists, or else
// ./cmd/sphere built into the work directory.
func sphereBinary(ctx context.Context, e *env) (string, error) {
	bin := e.o.sphereBin
	if bin == "" {
		if _, err := os.Stat("bin/sphere"); err == nil {
			bin = "bin/sphere"
		} else {
			bin = filepath.Join(e.work, "sphere-bin")
			if err := goBuild(ctx, bin, "./cmd/sphere"); err != nil {
				return "", err
			}
		}
	}
	return filepath.Abs(bin)
}

// goBuild builds pkg of this module into out.
func goBuild(ctx context.Context, out, pkg string) error {
	say("building %s", pkg)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s: %w", pkg, err)
	}
	return nil
}

// freeAddr returns a 127.0.0.1 address with a port nobody listens on.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// start runs `sphere server` and waits until it answers on its socket. A
// restarted daemon mounts again what it had mounted.
func (s *sphere) start(ctx context.Context) error {
	log, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	s.cmd = exec.Command(s.bin, "--socket", s.socket, "server",
		"--data-dir", filepath.Join(s.dir, "data"),
		"--raft-addr", s.raftAddr,
		"--audit-log", "-",
		"--blob-store", s.blobs,
		"--cache-dir", s.cacheDir)
	s.cmd.Stdout, s.cmd.Stderr = log, log
	say("starting sphere server (%s)", s.bin)
	if err := s.cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("start sphere server: %w", err)
	}
	s.exited = make(chan error, 1)
	go func() { s.exited <- s.cmd.Wait(); log.Close() }()

	deadline := time.After(sphereStartTimeout)
	for {
		if _, err := s.run(ctx, nil, "whoami"); err == nil {
			return nil
		}
		select {
		case err := <-s.exited:
			s.exited <- err // for stop
			return fmt.Errorf("sphere server exited (%v) before serving: %s", err, s.logTail())
		case <-deadline:
			return fmt.Errorf("sphere server did not answer within %v: %s", sphereStartTimeout, s.logTail())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stop shuts the daemon down with SIGTERM, which unmounts its projects,
// and kills it if it does not exit within 20 s. A mount still there after
// that is detached lazily: the work directory is removed afterwards, and
// that must not reach the bucket or the datasets through a mount.
func (s *sphere) stop() {
	if s.exited == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.exited:
		if err != nil {
			say("sphere server exited with %v: %s", err, s.logTail())
		}
	case <-time.After(20 * time.Second):
		say("sphere server ignored SIGTERM for 20s; killing it")
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
	s.exited = nil
	s.reportProblems()
	if mounted, _ := isMountPoint(s.mnt); mounted {
		say("%s still mounted after the daemon stopped; detaching it", s.mnt)
		_ = exec.Command("umount", "-l", s.mnt).Run()
	}
}

// restartCold stops the daemon, empties its chunk cache and starts it
// again, then waits until its mount is back and shows path.
func (s *sphere) restartCold(ctx context.Context, path string) error {
	s.stop()
	if err := os.RemoveAll(s.cacheDir); err != nil {
		return err
	}
	if err := s.start(ctx); err != nil {
		return err
	}
	deadline := time.Now().Add(sphereStartTimeout)
	for {
		_, err := os.Stat(path)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the restarted daemon does not show %s: %v: %s", path, err, s.logTail())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// setup creates the organization, stores the bucket's key as a secret,
// creates the bucket's connector, activates it and mounts the project.
func (s *sphere) setup(ctx context.Context, e *env) error {
	say("creating %s with connector %s, mounting it on %s", sphereProject, sphereConnector, s.mnt)
	steps := []struct {
		stdin []byte
		args  []string
	}{
		{nil, []string{"org", "create", "bench"}},
		{nil, []string{"community", "create", "bench/lab"}},
		{nil, []string{"project", "create", sphereProject}},
		{[]byte(e.server.SecretKey), []string{"secret", "create", sphereProject, sphereKeySecret}},
		{nil, []string{"s3", "create", sphereProject, sphereConnector, "--endpoint", e.server.Endpoint, "--bucket", bucket,
			"--key-id", e.server.AccessKey, "--key-secret", sphereKeySecret, "--mode", "rw"}},
		{nil, []string{"s3", "activate", sphereProject, sphereConnector}},
		{nil, []string{"mount", sphereProject, s.mnt}},
	}
	for _, st := range steps {
		if _, err := s.run(ctx, st.stdin, st.args...); err != nil {
			return err
		}
	}
	// The bucket must really be there: the big object is the proof.
	if _, err := os.Stat(filepath.Join(s.bucketDir(), bigKey)); err != nil {
		return fmt.Errorf("the sphere mount does not show the bucket: %w", err)
	}
	return nil
}

// bucketDir is where the mount shows the bucket.
func (s *sphere) bucketDir() string { return filepath.Join(s.mnt, "s3", sphereConnector) }

// run runs the sphere CLI against the daemon, with stdin if not nil, and
// returns its standard output.
func (s *sphere) run(ctx context.Context, stdin []byte, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, s.bin, append([]string{"--socket", s.socket}, args...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err() // killed because the run was interrupted
		}
		// The key is the only secret passed, and only on stdin: args are safe to show.
		return "", fmt.Errorf("sphere %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errOut.String()))
	}
	return out.String(), nil
}

// reportProblems repeats the warnings and errors the daemon logged since
// it started, and what its mounts logged (why an operation failed with
// EIO), and truncates the log.
func (s *sphere) reportProblems() {
	data, err := os.ReadFile(s.logPath)
	if err != nil {
		return
	}
	for line := range strings.Lines(string(data)) {
		if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") || strings.Contains(line, "sphere mount ") {
			say("sphere server: %s", strings.TrimSpace(line))
		}
	}
	_ = os.Truncate(s.logPath, 0)
}

// logTail is the end of the daemon's log, for error messages.
func (s *sphere) logTail() string {
	data, err := os.ReadFile(s.logPath)
	if err != nil {
		return err.Error()
	}
	const max = 2000
	if len(data) > max {
		data = data[len(data)-max:]
	}
	return "log " + s.logPath + ":\n" + string(data)
}
