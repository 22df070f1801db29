package cluster

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/sphere-sandbox/sphere/policy"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func openNode(t *testing.T, dir, addr string) *Node {
	t.Helper()
	n, err := Open(Config{NodeID: "n1", DataDir: dir, RaftAddr: addr, Bootstrap: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := n.WaitLeader(ctx); err != nil {
		n.Close()
		t.Fatal(err)
	}
	return n
}

func propose(t *testing.T, n *Node, actor policy.ID, typ CommandType, payload any) policy.ID {
	t.Helper()
	c, err := NewCommand(typ, actor, payload)
	if err != nil {
		t.Fatal(err)
	}
	r, _, err := n.Propose(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	return r.ID
}

func encode(t *testing.T, n *Node) string {
	t.Helper()
	var data []byte
	var err error
	n.FSM().Read(func(s *State) { data, err = s.Encode() })
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// A single node bootstraps itself, and a restarted node recovers its state
// from the log alone and from a snapshot plus the log after it.
func TestNodeRecoversAfterRestart(t *testing.T) {
	dir, addr := t.TempDir(), freeAddr(t)
	if HasState(dir) {
		t.Fatal("an empty data dir reports state")
	}
	n := openNode(t, dir, addr)
	org := propose(t, n, policy.Bootstrap, CmdCreate, Create{Kind: policy.KindOrg, Parent: policy.System, Name: "acme"})
	propose(t, n, policy.Bootstrap, CmdCreate, Create{Kind: policy.KindCommunity, Parent: org, Name: "cats"})
	if err := n.Snapshot(); err != nil {
		t.Fatal(err)
	}
	propose(t, n, policy.Bootstrap, CmdAddUser, AddUser{Name: "alice", UID: 1001})
	want := encode(t, n)
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if !HasState(dir) {
		t.Fatal("HasState is false after a run")
	}

	n = openNode(t, dir, addr)
	defer n.Close()
	// Entries after the snapshot are replayed once the node has a leader
	// that committed an entry of its own term: ReadIndex's barrier.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	idx, err := n.ReadIndex(ctx)
	if err == nil {
		err = n.WaitApplied(ctx, idx)
	}
	if err != nil {
		t.Fatal(err)
	}
	if got := encode(t, n); got != want {
		t.Fatalf("restarted node did not recover its state:\n got %s\nwant %s", got, want)
	}
	if st := n.Status(); st.State != "Leader" || st.Leader != "n1" {
		t.Errorf("status after restart: %+v", st)
	}
}
