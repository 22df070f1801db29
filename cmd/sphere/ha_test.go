package main

// The HA cluster on real processes: three nodes on loopback, leaders killed
// with SIGKILL, a node cut off behind a relay, a linearizability check of a
// concurrent history across leader kills, membership and the cluster secret.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/sphere-sandbox/sphere/daemon/api"
	"github.com/sphere-sandbox/sphere/internal/testwait"
)

// relay forwards TCP connections to a node's Raft listener until it is cut:
// then it drops every connection, open or new, like a network partition of
// everything that dials the node. The node's own dials (a follower's only
// ones are election requests) still get out, and are refused by peers that
// hear from their leader.
type relay struct {
	addr, target string
	l            net.Listener

	mu    sync.Mutex
	down  bool
	conns map[net.Conn]bool
}

func newRelay(t testing.TB, target string) *relay {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{addr: l.Addr().String(), target: target, l: l, conns: map[net.Conn]bool{}}
	go r.serve()
	t.Cleanup(func() {
		l.Close()
		r.cut()
	})
	return r
}

func (r *relay) serve() {
	for {
		in, err := r.l.Accept()
		if err != nil {
			return
		}
		go r.pipe(in)
	}
}

func (r *relay) pipe(in net.Conn) {
	out, err := net.DialTimeout("tcp", r.target, time.Second)
	if err != nil {
		in.Close()
		return
	}
	if !r.track(in, out) {
		in.Close()
		out.Close()
		return
	}
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(out, in); done <- struct{}{} }()
	go func() { _, _ = io.Copy(in, out); done <- struct{}{} }()
	<-done
	in.Close()
	out.Close()
}

func (r *relay) track(conns ...net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.down {
		return false
	}
	for _, c := range conns {
		r.conns[c] = true
	}
	return true
}

// cut drops every connection through the relay and refuses new ones.
func (r *relay) cut() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.down = true
	for c := range r.conns {
		c.Close()
	}
	clear(r.conns)
}

func (r *relay) heal() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.down = false
}

// clusterStatus asks a node for every node's status, as root (an admin, so
// with state hashes).
func (n *node) clusterStatus() (api.ClusterStatus, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var st api.ClusterStatus
	err := api.Dial(n.socket).Call(ctx, api.MClusterStatus, struct{}{}, &st)
	return st, err
}

// own is the node's own row of its cluster status.
func (n *node) own() (api.NodeStatus, error) {
	st, err := n.clusterStatus()
	if err != nil {
		return api.NodeStatus{}, err
	}
	for _, row := range st.Nodes {
		if row.ID == n.id {
			return row, nil
		}
	}
	return api.NodeStatus{}, fmt.Errorf("%s is not in its own cluster status: %+v", n.id, st)
}

// leaderOf waits until one of the nodes is leader and all of them agree
// on it, and returns it.
func leaderOf(t testing.TB, nodes []*node, timeout time.Duration) *node {
	t.Helper()
	var leader *node
	testwait.For(t, timeout, "a leader the nodes agree on", func() bool {
		leader = nil
		seen := map[string]bool{}
		for _, n := range nodes {
			row, err := n.own()
			if err != nil || row.SeesLeader == "" {
				return false
			}
			seen[row.SeesLeader] = true
			if row.Leader {
				leader = n
			}
		}
		return leader != nil && len(seen) == 1 && seen[leader.id]
	})
	return leader
}

// sameState waits until every node has applied the same index and hashes
// its state to the same value, and returns that hash.
func sameState(t testing.TB, nodes []*node, timeout time.Duration) string {
	t.Helper()
	var hash, seen string
	defer func() {
		if t.Failed() {
			t.Logf("last seen: %s", seen)
		}
	}()
	testwait.For(t, timeout, "every node to reach the same state", func() bool {
		var rows []string
		var index uint64
		agree := true
		for i, n := range nodes {
			row, err := n.own()
			if err != nil {
				seen = err.Error()
				return false
			}
			rows = append(rows, fmt.Sprintf("%s@%d:%.12s", n.id, row.AppliedIndex, row.StateHash))
			if i == 0 {
				hash, index = row.StateHash, row.AppliedIndex
			}
			agree = agree && row.StateHash == hash && row.AppliedIndex == index
		}
		seen = strings.Join(rows, " ")
		return agree && hash != ""
	})
	return hash
}

func without(nodes []*node, gone *node) []*node {
	var out []*node
	for _, n := range nodes {
		if n != gone {
			out = append(out, n)
		}
	}
	return out
}

// setDescriptions commits count updates of a community's description,
// through the given nodes from 16 callers.
func setDescriptions(t testing.TB, nodes []*node, ref string, count int) {
	t.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := 0; w < 16; w++ {
		client := api.Dial(nodes[w%len(nodes)].socket)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= int64(count); i = next.Add(1) {
				d := fmt.Sprintf("update %d", i)
				if err := client.Call(context.Background(), api.MSet, api.SetReq{Ref: ref, Description: &d}, nil); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// Kill -9 the leader while the followers serve reads: no read fails, a new
// leader is elected within 3 s, writes through every node resume, and the
// killed node, restarted after the others moved on past their snapshot's
// trailing log, catches up by installing a snapshot.
func TestHAKillLeader(t *testing.T) {
	nodes := startCluster(t, 3, false)
	nodes[0].ok(0, "org", "create", "acme")
	nodes[0].ok(0, "community", "create", "acme/cats", "--description", "meow")
	leader := leaderOf(t, nodes, 10*time.Second)
	survivors := without(nodes, leader)
	sameState(t, nodes, 10*time.Second)

	// Readers on the followers, each a CLI process, until told to stop.
	stop := make(chan struct{})
	var reads atomic.Int64
	var readErrs []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, f := range survivors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				out, errOut, code := f.try(0, "community", "show", "acme/cats")
				if code != 0 || !strings.Contains(out, "acme/cats") {
					mu.Lock()
					readErrs = append(readErrs, fmt.Sprintf("%s: exit %d: %s", f.id, code, errOut))
					mu.Unlock()
				}
				reads.Add(1)
			}
		}()
	}
	testwait.For(t, 10*time.Second, "reads to begin", func() bool { return reads.Load() >= 4 })

	killed := time.Now()
	leader.kill9()
	before := reads.Load()
	next := leaderOf(t, survivors, 10*time.Second)
	if took := time.Since(killed); took > 3*time.Second {
		t.Errorf("a new leader took %s after the old one was killed; want ≤ 3s", took)
	}
	t.Logf("%s killed; %s leads; election seen after %s", leader.id, next.id, time.Since(killed))
	testwait.For(t, 10*time.Second, "reads during the failover", func() bool { return reads.Load() >= before+4 })
	close(stop)
	wg.Wait()
	if len(readErrs) > 0 {
		t.Errorf("%d of %d reads on the followers failed while the leader died:\n%s", len(readErrs), reads.Load(), strings.Join(readErrs, "\n"))
	}

	for i, n := range survivors {
		n.ok(0, "community", "create", fmt.Sprintf("acme/after%d", i))
	}

	// Move past the snapshot's trailing log (4,096 entries), so the killed
	// node's next entry is gone from every log and only a snapshot helps.
	lost := sameState(t, survivors, 10*time.Second)
	setDescriptions(t, survivors, "community:acme/cats", 4200)
	next.ok(0, "cluster", "snapshot")
	snap, err := next.own()
	if err != nil {
		t.Fatal(err)
	}
	leader.restart()
	after := sameState(t, nodes, 60*time.Second)
	if after == lost {
		t.Fatal("the state did not change while the node was down")
	}
	row, err := leader.own()
	if err != nil {
		t.Fatal(err)
	}
	if row.LastSnapshotIndex < snap.LastSnapshotIndex {
		t.Errorf("%s caught up without installing the leader's snapshot (its snapshot index %d, the leader's %d)", leader.id, row.LastSnapshotIndex, snap.LastSnapshotIndex)
	}
	t.Logf("%s caught up to index %d from a snapshot at %d", leader.id, row.AppliedIndex, row.LastSnapshotIndex)
	for _, n := range nodes {
		if out := n.ok(0, "--consistent", "community", "show", "acme/cats"); !strings.Contains(out, "update ") {
			t.Errorf("%s shows acme/cats as:\n%s", n.id, out)
		}
		n.ok(0, "--consistent", "community", "show", "acme/after1")
	}
}

// A node cut off from the others cannot commit, says so, and catches up
// when it is reconnected.
func TestHAPartition(t *testing.T) {
	nodes := startCluster(t, 3, true)
	nodes[0].ok(0, "org", "create", "acme")
	leader := leaderOf(t, nodes, 10*time.Second)
	var victim *node
	for _, n := range nodes {
		if n != leader && n.relay != nil {
			victim = n
		}
	}
	sameState(t, nodes, 10*time.Second)

	victim.relay.cut()
	testwait.For(t, 10*time.Second, victim.id+" to notice it has no leader", func() bool {
		row, err := victim.own()
		return err == nil && strings.HasPrefix(row.Health, "no leader")
	})
	t0 := time.Now()
	victim.fails(0, 1, "no leader", "community", "create", "acme/dogs")
	if took := time.Since(t0); took > 15*time.Second {
		t.Errorf("a write through the cut-off node took %s to fail", took)
	}
	victim.fails(0, 1, "no leader", "--consistent", "org", "show", "acme")
	victim.ok(0, "org", "show", "acme") // local reads go on
	out := victim.ok(0, "cluster", "status")
	if !strings.Contains(out, "no leader") {
		t.Errorf("cluster status on the cut-off node does not say it has no leader:\n%s", out)
	}

	// The majority goes on committing.
	for _, n := range without(nodes, victim) {
		n.ok(0, "community", "create", "acme/from-"+n.id)
	}

	victim.relay.heal()
	sameState(t, nodes, 30*time.Second)
	victim.ok(0, "community", "show", "acme/from-"+leader.id)
	victim.fails(0, 4, "not found", "community", "show", "acme/dogs")
}

// regOp is one operation on a register, the description of a community:
// a set of a value, or a linearizable get.
type regOp struct {
	set   bool
	value string
}

var registerModel = porcupine.Model{
	Init: func() any { return "" },
	Step: func(state, input, output any) (bool, any) {
		op := input.(regOp)
		if op.set {
			return true, op.value
		}
		return output.(string) == state.(string), state
	},
	DescribeOperation: func(input, output any) string {
		if op := input.(regOp); op.set {
			return fmt.Sprintf("set(%q)", op.value)
		}
		return fmt.Sprintf("get() → %q", output)
	},
}

// Concurrent sets and --consistent gets of one description through every
// node, while the leader is killed twice, form a linearizable history; and
// every node ends with the same state.
func TestHALinearizable(t *testing.T) {
	nodes := startCluster(t, 3, false)
	nodes[0].ok(0, "org", "create", "acme")
	nodes[0].ok(0, "community", "create", "acme/cats")
	sameState(t, nodes, 10*time.Second)

	var live sync.Map // *node → bool: nodes the clients may use
	for _, n := range nodes {
		live.Store(n, true)
	}
	pick := func(r *rand.Rand) *node {
		var up []*node
		live.Range(func(k, _ any) bool { up = append(up, k.(*node)); return true })
		return up[r.IntN(len(up))]
	}

	start := time.Now()
	var mu sync.Mutex
	var history []porcupine.Operation
	stop := make(chan struct{})
	var wg sync.WaitGroup
	const clients = 6
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(c), 1))
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				n := pick(r)
				client := api.Dial(n.socket).Consistent()
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				op := porcupine.Operation{ClientId: c, Call: time.Since(start).Nanoseconds()}
				var err error
				if r.IntN(2) == 0 {
					v := fmt.Sprintf("c%d-%d", c, i)
					op.Input, op.Output = regOp{set: true, value: v}, ""
					err = client.Call(ctx, api.MSet, api.SetReq{Ref: "community:acme/cats", Description: &v}, nil)
				} else {
					var e api.Entity
					op.Input = regOp{}
					err = client.Call(ctx, api.MShow, api.RefReq{Ref: "community:acme/cats"}, &e)
					op.Output = e.Description
				}
				cancel()
				op.Return = time.Since(start).Nanoseconds()
				if err != nil {
					if op.Input.(regOp).set {
						// It may have been committed all the same: it took
						// effect at some point after its call, or never,
						// which for a register is the same as at the end.
						op.Return = math.MaxInt64
					} else {
						continue // a failed read observed nothing
					}
				}
				mu.Lock()
				history = append(history, op)
				mu.Unlock()
			}
		}()
	}

	ops := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(history)
	}
	for kill := 0; kill < 2; kill++ {
		want := ops() + 40
		testwait.For(t, 60*time.Second, "operations to go through", func() bool { return ops() >= want })
		leader := leaderOf(t, nodes, 10*time.Second)
		live.Delete(leader)
		leader.kill9()
		leaderOf(t, without(nodes, leader), 10*time.Second)
		want = ops() + 40
		testwait.For(t, 60*time.Second, "operations after the failover", func() bool { return ops() >= want })
		leader.restart()
		live.Store(leader, true)
	}
	want := ops() + 40
	testwait.For(t, 60*time.Second, "operations at the end", func() bool { return ops() >= want })
	close(stop)
	wg.Wait()

	res, info := porcupine.CheckOperationsVerbose(registerModel, history, time.Minute)
	if res != porcupine.Ok {
		path := filepath.Join(t.TempDir(), "history.html")
		if f, err := os.Create(path); err == nil {
			_ = porcupine.Visualize(registerModel, info, f)
			f.Close()
		}
		t.Fatalf("the history of %d operations is %s (visualization: %s)", len(history), res, path)
	}
	t.Logf("%d operations, linearizable", len(history))
	sameState(t, nodes, 30*time.Second)
}

// Joining is idempotent, a node moves by joining again at a new address,
// only an administrator changes the membership, and without the cluster
// secret nobody joins, forwards writes or reads internal endpoints. A
// leader stopped with SIGTERM hands its leadership over first.
func TestHAMembership(t *testing.T) {
	nodes := startCluster(t, 3, false)
	n1 := nodes[0]
	n1.ok(0, "user", "add", "alice", "--uid", fmt.Sprint(uidAlice))
	n3 := without(nodes, leaderOf(t, nodes, 10*time.Second))[1] // a follower: restarting it starts no term
	sameState(t, nodes, 10*time.Second)
	before, err := n1.clusterStatus()
	if err != nil {
		t.Fatal(err)
	}

	// The same id and addresses again: nothing changes, nothing is written.
	n1.ok(0, "cluster", "join", n3.id, n3.advertise, n3.apiAddr)
	n3.stop()
	n3.restart() // with --join again
	sameState(t, nodes, 10*time.Second)
	after, err := n1.clusterStatus()
	if err != nil {
		t.Fatal(err)
	}
	if len(after.Nodes) != 3 || !slices.Equal(commitIndexes(after), commitIndexes(before)) {
		t.Errorf("joining again changed the cluster:\nbefore %+v\nafter  %+v", before, after)
	}

	// The same id at another address replaces it.
	n1.ok(0, "cluster", "join", "ghost", "127.0.0.1:1", "127.0.0.1:2")
	n1.ok(0, "cluster", "join", "ghost", "127.0.0.1:3", "127.0.0.1:4")
	st, err := n1.clusterStatus()
	if err != nil {
		t.Fatal(err)
	}
	ghosts := 0
	for _, row := range st.Nodes {
		if row.ID == "ghost" {
			ghosts++
			if row.RaftAddr != "127.0.0.1:3" || row.APIAddr != "127.0.0.1:4" || !strings.HasPrefix(row.Health, "unreachable") {
				t.Errorf("ghost after moving: %+v", row)
			}
		}
	}
	if ghosts != 1 || len(st.Nodes) != 4 {
		t.Errorf("after adding and moving ghost: %+v", st)
	}
	nodes[1].ok(0, "cluster", "remove", "ghost") // through a follower, maybe
	nodes[1].fails(uidAlice, 3, "permission denied", "cluster", "join", "ghost", "127.0.0.1:3", "127.0.0.1:4")
	nodes[1].fails(uidAlice, 3, "permission denied", "cluster", "remove", n3.id)
	testwait.For(t, 10*time.Second, "ghost to be gone", func() bool {
		st, err := n3.clusterStatus()
		return err == nil && len(st.Nodes) == 3
	})

	// A stranger without the secret.
	for _, secret := range []string{"", "Cluster not-the-secret-but-long-enough-to-look-like-it", "Bearer x"} {
		for _, method := range []string{"propose", "readindex", "join", "remove", "status", "nonexistent"} {
			req, _ := http.NewRequest(http.MethodPost, "http://"+n1.apiAddr+"/internal/v1/"+method,
				strings.NewReader(`{"v":1,"type":"user.add","actor":4,"payload":{"name":"mallory","uid":6666}}`))
			if secret != "" {
				req.Header.Set("Authorization", secret)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden || !bytes.Contains(body, []byte("cluster secret")) {
				t.Errorf("%s with %q: %s %s", method, secret, resp.Status, body)
			}
		}
	}
	n1.fails(0, 4, "not found", "user", "show", "mallory")
	stranger := newNode(t, nodeOpts{id: "stranger", join: n1})
	if err := os.WriteFile(filepath.Join(stranger.dataDir, "cluster.secret"), []byte(strings.Repeat("0", 64)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := stranger.start(); err == nil || !strings.Contains(err.Error(), "cluster secret") {
		t.Errorf("a node with the wrong cluster secret joined, or failed unclearly: %v", err)
	}
	keyless := newNode(t, nodeOpts{id: "keyless", join: n1})
	if err := os.Remove(filepath.Join(keyless.dataDir, "master.key")); err != nil {
		t.Fatal(err)
	}
	if err := keyless.start(); err == nil || !strings.Contains(err.Error(), "needs a copy of the cluster's master key") {
		t.Errorf("a node without the master key joined, or failed unclearly: %v", err)
	}
	if st, err := n1.clusterStatus(); err != nil || len(st.Nodes) != 3 {
		t.Errorf("after the strangers: %+v %v", st, err)
	}

	// SIGTERM on the leader hands leadership over before it stops.
	leader := leaderOf(t, nodes, 10*time.Second)
	leader.stop()
	if !strings.Contains(leader.log.String(), "handed over leadership") {
		t.Errorf("the leader stopped without handing over leadership:\n%s", leader.log)
	}
	rest := without(nodes, leader)
	leaderOf(t, rest, 2*time.Second)
	rest[0].ok(0, "org", "create", "after-handover")
}

func commitIndexes(st api.ClusterStatus) []uint64 {
	var out []uint64
	for _, row := range st.Nodes {
		out = append(out, row.CommitIndex)
	}
	slices.Sort(out)
	return out
}

// BenchmarkHAMetadataWrite is BenchmarkMetadataWrite on three nodes: 16
// callers spread over the nodes' sockets, so two writes in three are
// forwarded to the leader. Reports writes/s and the p50/p99 latency.
func BenchmarkHAMetadataWrite(b *testing.B) {
	benchWrites(b, startCluster(b, 3, false))
}

// BenchmarkHAFailover kills the leader of three nodes with SIGKILL ten
// times, and measures each failover from the kill to the first write a
// survivor commits (election, then forwarding to the new leader). The
// killed node is restarted and caught up before the next kill. One run
// is the whole measurement (use -benchtime=1x).
func BenchmarkHAFailover(b *testing.B) {
	nodes := startCluster(b, 3, false)
	nodes[0].ok(0, "org", "create", "bench")
	sameState(b, nodes, 10*time.Second)
	ctx := context.Background()
	var took []time.Duration
	for i := 0; i < 10; i++ {
		leader := leaderOf(b, nodes, 10*time.Second)
		survivor := api.Dial(without(nodes, leader)[0].socket)
		killed := time.Now()
		leader.kill9()
		if err := survivor.Call(ctx, api.MCreate, api.CreateReq{Ref: fmt.Sprintf("community:bench/after-kill-%d", i)}, nil); err != nil {
			b.Fatal(err)
		}
		took = append(took, time.Since(killed))
		leader.restart()
		sameState(b, nodes, 30*time.Second)
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[0].Milliseconds()), "failover-min-ms")
	b.ReportMetric(float64(took[len(took)/2].Milliseconds()), "failover-median-ms")
	b.ReportMetric(float64(took[len(took)-1].Milliseconds()), "failover-max-ms")
}
