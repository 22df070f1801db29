package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
)

// Config configures a node.
type Config struct {
	NodeID   string
	DataDir  string
	RaftAddr string // host:port the node listens on for Raft
	// Advertise is the Raft address other nodes dial, when it is not
	// RaftAddr (a NAT or a relay in front of the node); default RaftAddr.
	Advertise string
	// Bootstrap makes a node with no Raft state start a cluster of its own.
	Bootstrap bool
	Logger    *slog.Logger
}

// Node is one member of the Raft cluster with its state machine.
type Node struct {
	cfg       Config
	raft      *raft.Raft
	fsm       *FSM
	store     *raftboltdb.BoltStore
	transport *raft.NetworkTransport

	// applied is the state machine's own applied index (State.Applied);
	// raft.AppliedIndex runs ahead of it (entries handed to the FSM, not
	// yet applied). advanced is closed and replaced whenever it moves.
	applied  atomic.Uint64
	mu       sync.Mutex
	advanced chan struct{}
	// readyTerm is the last term in which this node, as leader, saw a
	// barrier through: from then on its state holds every entry committed
	// before its term, and its applied index can serve reads (ReadIndex).
	readyTerm atomic.Uint64
}

// Open starts the node: it opens the log, replays snapshots and log entries
// into the state machine, and bootstraps a single-node cluster when asked and
// there is no earlier state.
func Open(cfg Config) (*Node, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	dir := filepath.Join(cfg.DataDir, "raft")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create raft dir: %w", err)
	}
	store, err := raftboltdb.NewBoltStore(filepath.Join(dir, "raft.db"))
	if err != nil {
		return nil, fmt.Errorf("open raft log %s: %w", dir, err)
	}
	if cfg.Advertise == "" {
		cfg.Advertise = cfg.RaftAddr
	}
	n := &Node{cfg: cfg, store: store, fsm: NewFSM(), advanced: make(chan struct{})}
	ok := false
	defer func() {
		if !ok {
			n.closeStores()
		}
	}()
	hlog := hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Warn, Output: os.Stderr})
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, 2, hlog)
	if err != nil {
		return nil, fmt.Errorf("open snapshots: %w", err)
	}
	addr, err := net.ResolveTCPAddr("tcp", cfg.Advertise)
	if err != nil {
		return nil, fmt.Errorf("raft address %q: %w", cfg.Advertise, err)
	}
	n.transport, err = raft.NewTCPTransportWithLogger(cfg.RaftAddr, addr, 3, 10*time.Second, hlog)
	if err != nil {
		return nil, fmt.Errorf("listen for raft on %s: %w", cfg.RaftAddr, err)
	}
	rc := raftConfig(cfg.NodeID, hlog)
	exists, err := raft.HasExistingState(store, store, snaps)
	if err != nil {
		return nil, fmt.Errorf("inspect raft state: %w", err)
	}
	if !exists && cfg.Bootstrap {
		boot := raft.Configuration{Servers: []raft.Server{{ID: rc.LocalID, Address: n.transport.LocalAddr()}}}
		if err := raft.BootstrapCluster(rc, store, store, snaps, n.transport, boot); err != nil {
			return nil, fmt.Errorf("bootstrap: %w", err)
		}
	}
	n.raft, err = raft.NewRaft(rc, notifyingFSM{n}, store, store, snaps, n.transport)
	if err != nil {
		return nil, fmt.Errorf("start raft: %w", err)
	}
	ok = true
	return n, nil
}

// raftConfig tunes timeouts for a LAN or loopback cluster: failover must fit
// in 3 seconds (SPEC.md §12), which the library's 1 s defaults do not leave
// room for after the election's randomised back-off.
func raftConfig(id string, l hclog.Logger) *raft.Config {
	c := raft.DefaultConfig()
	c.LocalID = raft.ServerID(id)
	c.Logger = l
	c.HeartbeatTimeout = 500 * time.Millisecond
	c.ElectionTimeout = 500 * time.Millisecond
	c.LeaderLeaseTimeout = 250 * time.Millisecond
	c.CommitTimeout = 5 * time.Millisecond
	// Snapshot often enough that a restart replays a bounded log.
	c.SnapshotThreshold = 4096
	c.SnapshotInterval = 30 * time.Second
	c.TrailingLogs = 4096
	return c
}

// HasState reports whether a data directory already holds Raft state (a
// term, log entries or a snapshot), so the daemon can tell a first start
// from a restart before it opens anything. A node whose first attempt to
// join failed before it heard from the cluster has none, and joins again.
func HasState(dataDir string) bool {
	dir := filepath.Join(dataDir, "raft")
	path := filepath.Join(dir, "raft.db")
	if _, err := os.Stat(path); err != nil {
		return false
	}
	// Read-only and with a timeout: another process may hold the log.
	store, err := raftboltdb.New(raftboltdb.Options{Path: path, BoltOptions: &bbolt.Options{ReadOnly: true, Timeout: time.Second}})
	if err != nil {
		return true // let Open say what is wrong with it
	}
	defer store.Close()
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, 2, hclog.NewNullLogger())
	if err != nil {
		return true
	}
	exists, err := raft.HasExistingState(store, store, snaps)
	return exists || err != nil
}

// FSM is the node's state machine.
func (n *Node) FSM() *FSM { return n.fsm }

// IsLeader reports whether this node can commit writes now.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// WaitLeader waits until the cluster has a leader.
func (n *Node) WaitLeader(ctx context.Context) error {
	obs := make(chan raft.Observation, 4)
	o := raft.NewObserver(obs, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	n.raft.RegisterObserver(o)
	defer n.raft.DeregisterObserver(o)
	for {
		if addr, _ := n.raft.LeaderWithID(); addr != "" {
			return nil
		}
		select {
		case <-obs:
		case <-ctx.Done():
			return fmt.Errorf("no leader elected: %w", ctx.Err())
		}
	}
}

// Propose commits a command and returns the state machine's response and
// the entry's log index: a node that forwarded the command waits until it
// has applied that index, so its caller reads what they wrote. The error is
// about getting it committed; the response carries the command's own
// outcome, which the caller must check.
func (n *Node) Propose(ctx context.Context, c *Command) (Response, uint64, error) {
	data, err := json.Marshal(c)
	if err != nil {
		return Response{}, 0, fmt.Errorf("encode command: %w", err)
	}
	timeout := 10 * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	f := n.raft.Apply(data, timeout)
	if err := f.Error(); err != nil {
		return Response{}, 0, leaderError(err, "commit "+string(c.Type))
	}
	r, ok := f.Response().(Response)
	if !ok {
		return Response{}, 0, fmt.Errorf("commit %s: state machine returned %T", c.Type, f.Response())
	}
	return r, f.Index(), nil
}

// Snapshot takes a snapshot now.
func (n *Node) Snapshot() error {
	return n.raft.Snapshot().Error()
}

// Status is one node's own view of the cluster, for `sphere cluster status`.
type Status struct {
	NodeID     string `json:"node_id"`
	State      string `json:"state"` // Leader, Follower, Candidate, Shutdown
	Leader     string `json:"leader"`
	LeaderAddr string `json:"leader_addr"`
	Term       uint64 `json:"term"`
	// CommitIndex and LastLogIndex are Raft's; AppliedIndex is the state
	// machine's, the point StateHash was taken at.
	CommitIndex       uint64 `json:"commit_index"`
	LastLogIndex      uint64 `json:"last_log_index"`
	AppliedIndex      uint64 `json:"applied_index"`
	LastSnapshotIndex uint64 `json:"last_snapshot_index"`
	// LastContactMS is how long ago a follower last heard from a leader
	// (-1: never since it started; 0 on the leader).
	LastContactMS int64 `json:"last_contact_ms"`
	// StateHash is the SHA-256 of State.Encode at AppliedIndex: nodes at
	// the same index must agree on it.
	StateHash string `json:"state_hash"`
}

// Status reports the node's Raft status and a hash of its state.
func (n *Node) Status() Status {
	addr, id := n.raft.LeaderWithID()
	st := Status{
		NodeID: n.cfg.NodeID, State: n.raft.State().String(), Leader: string(id), LeaderAddr: string(addr),
		Term: n.raft.CurrentTerm(), CommitIndex: n.raft.CommitIndex(), LastLogIndex: n.raft.LastIndex(),
		LastContactMS: -1,
	}
	st.LastSnapshotIndex, _ = strconv.ParseUint(n.raft.Stats()["last_snapshot_index"], 10, 64)
	switch last := n.raft.LastContact(); {
	case n.IsLeader():
		st.LastContactMS = 0
	case !last.IsZero():
		st.LastContactMS = time.Since(last).Milliseconds()
	}
	var data []byte
	var err error
	n.fsm.Read(func(s *State) {
		st.AppliedIndex = s.Applied
		data, err = s.Encode()
	})
	if err == nil {
		st.StateHash = fmt.Sprintf("%x", sha256.Sum256(data))
	}
	return st
}

// LeaderID is the leader's id as this node knows it, or "" when there is
// none (an election, or no quorum).
func (n *Node) LeaderID() string {
	_, id := n.raft.LeaderWithID()
	return string(id)
}

// Close stops Raft and closes the log. Committed entries are already on disk.
// A leader first hands its leadership to another voter, so the cluster does
// not sit out an election timeout with nobody to commit writes.
func (n *Node) Close() error {
	if n.IsLeader() && n.hasOtherVoters() {
		if err := n.raft.LeadershipTransfer().Error(); err != nil {
			n.cfg.Logger.Warn("could not hand over leadership before stopping", "err", err)
		} else {
			n.cfg.Logger.Info("handed over leadership", "to", n.LeaderID())
		}
	}
	err := n.raft.Shutdown().Error()
	n.closeStores()
	return err
}

func (n *Node) hasOtherVoters() bool {
	servers, err := n.Servers()
	if err != nil {
		return false
	}
	for _, s := range servers {
		if s.Voter && s.ID != n.cfg.NodeID {
			return true
		}
	}
	return false
}

func (n *Node) closeStores() {
	if n.transport != nil {
		n.transport.Close()
	}
	if n.store != nil {
		n.store.Close()
	}
}

// ReadSnapshotFile decodes a snapshot file written by this package, for tools
// and tests that compare states.
func ReadSnapshotFile(r io.Reader) (*State, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	s := NewState()
	return s, s.Decode(data)
}

// leaderError turns Raft's "this node cannot commit" errors into
// ErrNotLeader, so callers know to try the leader instead.
func leaderError(err error, what string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return fmt.Errorf("%s: %w", what, ErrNotLeader)
	default:
		return fmt.Errorf("%s: %w", what, err)
	}
}

// notifyingFSM is the state machine as Raft drives it: after every change
// it records the state's applied index and wakes WaitApplied.
type notifyingFSM struct{ n *Node }

func (f notifyingFSM) Apply(l *raft.Log) any {
	r := f.n.fsm.Apply(l)
	f.n.advance()
	return r
}

func (f notifyingFSM) Snapshot() (raft.FSMSnapshot, error) { return f.n.fsm.Snapshot() }

func (f notifyingFSM) Restore(rc io.ReadCloser) error {
	err := f.n.fsm.Restore(rc)
	f.n.advance()
	return err
}

func (n *Node) advance() {
	var idx uint64
	n.fsm.Read(func(s *State) { idx = s.Applied })
	n.applied.Store(idx)
	n.mu.Lock()
	close(n.advanced)
	n.advanced = make(chan struct{})
	n.mu.Unlock()
}
