package main

// End-to-end helpers: the built sphere binary, real daemon processes, and
// the CLI run as other uids through SysProcAttr.Credential (no /etc/passwd
// entries needed).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// sphereBin is the binary under test, built once by TestMain into a
// directory every uid may read.
var sphereBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sphere-e2e-bin-")
	if err != nil {
		panic(err)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		if err := os.Chmod(dir, 0o755); err != nil {
			panic(err)
		}
		sphereBin = filepath.Join(dir, "sphere")
		build := exec.Command("go", "build", "-o", sphereBin, ".")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building sphere:", err)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

// Test uids: registered and unregistered users the tests act as.
const (
	uidAlice uint32 = 1001
	uidBob   uint32 = 1002
	uidCarol uint32 = 1003
	uidEve   uint32 = 1099 // never registered
)

// sharedTempDir is a t.TempDir that other uids can traverse.
func sharedTempDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// node is one sphere server process.
type node struct {
	t        testing.TB
	id       string
	dir      string // everything of this node: data, socket, logs
	dataDir  string
	socket   string
	raftAddr string
	// advertise is where the other nodes dial this node's Raft: raftAddr,
	// or the relay in front of it.
	advertise string
	apiAddr   string // "" without a remote API
	join      string // the API address joined on the first start
	relay     *relay // nil unless nodeOpts.relay
	extra     []string
	cmd       *exec.Cmd
	log       *syncBuffer
	exited    chan error
}

type nodeOpts struct {
	extra []string // more `sphere server` flags
	id    string   // --node-id; default node1
	api   bool     // listen for the remote API and other nodes (--api-addr)
	// join makes the node join that node's cluster, with copies of its
	// master key and cluster secret; it implies api.
	join *node
	// relay puts a relay the test controls in front of the node's Raft
	// listener (--raft-advertise), to cut the node off (relay.cut).
	relay bool
}

// startNode starts a daemon and waits until it answers on its socket, which
// for a joining node means it has joined and caught up. The node is stopped
// (SIGTERM, then SIGKILL) when the test ends.
func startNode(t testing.TB, o nodeOpts) *node {
	t.Helper()
	n := newNode(t, o)
	if err := n.start(); err != nil {
		t.Fatal(err)
	}
	return n
}

// newNode prepares a node without starting it; it is stopped when the test
// ends if it runs then.
func newNode(t testing.TB, o nodeOpts) *node {
	t.Helper()
	dir := sharedTempDir(t)
	n := &node{t: t, id: o.id, dir: dir, dataDir: filepath.Join(dir, "data"), socket: filepath.Join(dir, "sphere.sock"),
		raftAddr: freeAddr(t), extra: o.extra}
	if n.id == "" {
		n.id = "node1"
	}
	n.advertise = n.raftAddr
	if o.relay {
		n.relay = newRelay(t, n.raftAddr)
		n.advertise = n.relay.addr
	}
	if o.api || o.join != nil {
		n.apiAddr = freeAddr(t)
	}
	if o.join != nil {
		n.join = o.join.apiAddr
		if err := os.MkdirAll(n.dataDir, 0o700); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"master.key", "cluster.secret"} {
			copyFile(t, filepath.Join(o.join.dataDir, f), filepath.Join(n.dataDir, f))
		}
	}
	t.Cleanup(n.stop)
	return n
}

// startCluster starts size nodes, node1 bootstrapping and the others joining
// it, every one with a remote API; relay puts relays in front of the
// joiners' Raft listeners.
func startCluster(t testing.TB, size int, relay bool) []*node {
	t.Helper()
	nodes := []*node{startNode(t, nodeOpts{id: "node1", api: true})}
	for i := 2; i <= size; i++ {
		nodes = append(nodes, startNode(t, nodeOpts{id: fmt.Sprintf("node%d", i), join: nodes[0], relay: relay}))
	}
	return nodes
}

func copyFile(t testing.TB, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func (n *node) args() []string {
	a := []string{"--socket", n.socket, "server", "--data-dir", n.dataDir, "--node-id", n.id,
		"--raft-addr", n.raftAddr, "--raft-advertise", n.advertise}
	if n.apiAddr != "" {
		a = append(a, "--api-addr", n.apiAddr)
	}
	if n.join != "" {
		a = append(a, "--join", n.join)
	}
	return append(a, n.extra...)
}

// start runs the server and waits for its socket to answer.
func (n *node) start() error {
	n.log = &syncBuffer{}
	n.cmd = exec.Command(sphereBin, n.args()...)
	n.cmd.Stdout, n.cmd.Stderr = n.log, n.log
	if err := n.cmd.Start(); err != nil {
		return err
	}
	n.exited = make(chan error, 1)
	go func() { n.exited <- n.cmd.Wait() }()
	deadline := time.After(30 * time.Second)
	for {
		if _, _, code := n.try(0, "whoami"); code == 0 {
			return nil
		}
		select {
		case err := <-n.exited:
			n.cmd = nil
			return fmt.Errorf("sphere server exited (%v) before serving:\n%s", err, n.log)
		case <-deadline:
			return fmt.Errorf("sphere server did not answer within 30s:\n%s", n.log)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// stop shuts the node down with SIGTERM and checks it exits cleanly.
func (n *node) stop() {
	if n.cmd == nil {
		return
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-n.exited:
		if err != nil && !n.t.Failed() {
			n.t.Errorf("sphere server exited with %v after SIGTERM:\n%s", err, n.log)
		}
	case <-time.After(20 * time.Second):
		_ = n.cmd.Process.Kill()
		<-n.exited
		n.t.Errorf("sphere server ignored SIGTERM for 20s:\n%s", n.log)
	}
	if n.t.Failed() {
		n.t.Logf("server log:\n%s", n.log)
	}
	n.cmd = nil
}

// kill9 kills the node the hard way: no shutdown code runs.
func (n *node) kill9() {
	n.t.Helper()
	if err := n.cmd.Process.Kill(); err != nil {
		n.t.Fatal(err)
	}
	<-n.exited
	n.cmd = nil
}

func (n *node) restart() {
	n.t.Helper()
	if n.cmd != nil { // a second server would leave the first running, unstopped
		n.t.Fatal("restart of a running node: stop or kill9 it first")
	}
	if err := n.start(); err != nil {
		n.t.Fatal(err)
	}
}

// try runs the CLI as uid against this node and returns stdout, stderr and
// the exit code.
func (n *node) try(uid uint32, args ...string) (string, string, int) {
	return runAs(n.t, uid, nil, append([]string{"--socket", n.socket}, args...)...)
}

// runAs runs the sphere binary as uid (0 = as the test, root).
func runAs(t testing.TB, uid uint32, stdin []byte, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, sphereBin, args...)
	asUID(cmd, uid)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out.String(), errb.String(), 0
	case errors.As(err, &ee):
		return out.String(), errb.String(), ee.ExitCode()
	default:
		t.Fatalf("run sphere %v: %v", args, err)
		return "", "", -1
	}
}

func asUID(cmd *exec.Cmd, uid uint32) {
	if uid != 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
		cmd.Dir = "/"
	}
}

// ok runs the CLI and fails the test unless it succeeds.
func (n *node) ok(uid uint32, args ...string) string {
	n.t.Helper()
	out, errOut, code := n.try(uid, args...)
	if code != 0 {
		n.t.Fatalf("sphere %s (uid %d) exited %d: %s%s", strings.Join(args, " "), uid, code, errOut, out)
	}
	return out
}

// fails runs the CLI, expecting the given exit code and a message containing want.
func (n *node) fails(uid uint32, code int, want string, args ...string) {
	n.t.Helper()
	out, errOut, got := n.try(uid, args...)
	if got != code || !strings.Contains(errOut, want) {
		n.t.Fatalf("sphere %s (uid %d): exit %d, stderr %q, stdout %q; want exit %d and a message containing %q",
			strings.Join(args, " "), uid, got, errOut, out, code, want)
	}
}

// jsonOut runs the CLI with --output json and decodes the result.
func (n *node) jsonOut(uid uint32, v any, args ...string) {
	n.t.Helper()
	out := n.ok(uid, append([]string{"--output", "json"}, args...)...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		n.t.Fatalf("sphere %v: bad JSON %q: %v", args, out, err)
	}
}

// syncBuffer is the server's output: written by the process's pipe copier
// while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *syncBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}
