package daemon

// The cluster seen from the daemon: forwarding writes and read-index
// requests to the leader, joining and leaving, and `sphere cluster status`.
//
// Nodes talk to each other over their API listeners (--api-addr), under
// /internal/v1/, authenticated by the cluster secret every node holds a copy
// of. A node holding it is trusted as the cluster itself: it may propose any
// command as any actor, because the node that received the user's call has
// already identified them (Command.Actor), and the state machine authorizes
// the command when it applies.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/sphere-sandbox/sphere/cluster"
	"github.com/sphere-sandbox/sphere/daemon/api"
	"github.com/sphere-sandbox/sphere/policy"
)

const (
	// internalPrefix is where node-to-node methods are served.
	internalPrefix = "/internal/v1/"
	// secretScheme is the Authorization scheme of node-to-node calls.
	secretScheme = "Cluster "
	// leaderTimeout bounds how long a write or a linearizable read looks
	// for a leader: several election rounds (each under a second), so a
	// failover is ridden out, while a node cut off from the majority
	// answers with an error instead of hanging.
	leaderTimeout = 10 * time.Second
	// statusTimeout bounds asking one node for its status.
	statusTimeout = 2 * time.Second
	// joinTimeout bounds a new node's search for the cluster it joins.
	joinTimeout = 30 * time.Second
)

// Node-to-node methods.
const (
	internalPropose   = "propose"   // a cluster.Command; the leader commits it (proposeReply)
	internalReadIndex = "readindex" // the leader's read index (indexReply)
	internalJoin      = "join"      // joinReq
	internalRemove    = "remove"    // removeReq
	internalStatus    = "status"    // the node's cluster.Status
)

type (
	joinReq struct {
		Member cluster.Member `json:"member"`
		Actor  policy.ID      `json:"actor"`
		// Forwarded marks a request one node already passed on: the
		// receiver must be the leader, so requests never travel in loops.
		Forwarded bool `json:"forwarded,omitempty"`
	}
	removeReq struct {
		ID    string    `json:"id"`
		Actor policy.ID `json:"actor"`
	}
	indexReply struct {
		Index uint64 `json:"index"`
	}
	proposeReply struct {
		Response cluster.Response `json:"response"`
		Index    uint64           `json:"index"`
	}
)

// clusterLink is this node's side of node-to-node calls.
type clusterLink struct {
	secret []byte
	http   *http.Client
}

func newClusterLink(secret []byte) *clusterLink {
	return &clusterLink{secret: secret, http: &http.Client{Timeout: leaderTimeout}}
}

// loadClusterSecret reads the cluster secret, creating it (0600) when create
// is set and the file is missing: a node that bootstraps a cluster mints it,
// a joining node must be given a copy.
func loadClusterSecret(path string, create bool) ([]byte, error) {
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		secret := bytes.TrimSpace(data)
		if len(secret) < 32 {
			return nil, fmt.Errorf("%w: %s holds %d characters, fewer than 32", ErrClusterSecret, path, len(secret))
		}
		return secret, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("%w: %v", ErrClusterSecret, err)
	case !create:
		return nil, fmt.Errorf("%w: %s is missing: a node joining a cluster needs a copy of the cluster secret file of the nodes it joins (--cluster-secret-file)", ErrClusterSecret, path)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, err
	}
	secret := []byte(hex.EncodeToString(raw))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%w: create %s: %v", ErrClusterSecret, path, err)
	}
	_, err = f.Write(append(secret, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("%w: write %s: %v", ErrClusterSecret, path, err)
	}
	return secret, nil
}

// authentic reports whether a request carries the cluster secret. Hashing
// both sides first makes the comparison's time independent of the length
// of what was presented, too.
func (l *clusterLink) authentic(r *http.Request) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), secretScheme)
	if !ok {
		return false
	}
	a, b := sha256.Sum256([]byte(got)), sha256.Sum256(l.secret)
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// unreachableError is a node-to-node call that got no answer: worth trying
// again, maybe with another leader.
type unreachableError struct {
	addr string
	err  error
}

func (e *unreachableError) Error() string { return fmt.Sprintf("node at %s: %v", e.addr, e.err) }
func (e *unreachableError) Unwrap() error { return e.err }

// call invokes a node-to-node method on the node at addr.
func (l *clusterLink) call(ctx context.Context, addr, method string, req, resp any) error {
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("encode %s: %w", method, err)
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+internalPrefix+method, bytes.NewReader(body))
	if err != nil {
		return err
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Authorization", secretScheme+string(l.secret))
	hresp, err := l.http.Do(hreq)
	if err != nil {
		return &unreachableError{addr: addr, err: err}
	}
	defer hresp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(hresp.Body, maxRequest))
	if err != nil {
		return &unreachableError{addr: addr, err: err}
	}
	switch hresp.StatusCode {
	case http.StatusOK:
		if resp == nil {
			return nil
		}
		return json.Unmarshal(data, resp)
	case http.StatusMisdirectedRequest:
		return fmt.Errorf("node at %s: %w", addr, cluster.ErrNotLeader)
	}
	var e api.Error
	if json.Unmarshal(data, &e) != nil || e.Code == "" {
		return fmt.Errorf("node at %s answered %s", addr, hresp.Status)
	}
	return &cluster.Error{Code: cluster.ErrCode(e.Code), Msg: e.Message}
}

// serveInternal answers node-to-node calls. Nothing is served to a caller
// without the cluster secret, not even whether a method exists.
func (d *Daemon) serveInternal(w http.ResponseWriter, r *http.Request) {
	if !d.link.authentic(r) {
		writeError(w, cluster.Errorf(cluster.CodeDenied, "permission denied: node-to-node calls need the cluster secret (--cluster-secret-file)"))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequest+1))
	if err != nil || len(body) > maxRequest || r.Method != http.MethodPost {
		writeError(w, cluster.Errorf(cluster.CodeInvalid, "bad node-to-node request"))
		return
	}
	ctx := r.Context()
	decode := func(v any) error {
		if err := json.Unmarshal(body, v); err != nil {
			return cluster.Errorf(cluster.CodeInvalid, "malformed node-to-node request: %v", err)
		}
		return nil
	}
	var res any
	switch method := strings.TrimPrefix(r.URL.Path, internalPrefix); method {
	case internalPropose:
		var cmd cluster.Command
		if err = decode(&cmd); err == nil {
			// Only ever proposed here: the sender retries elsewhere when
			// this node is not the leader, so requests never loop.
			var r proposeReply
			r.Response, r.Index, err = d.node.Propose(ctx, &cmd)
			res = r
		}
	case internalReadIndex:
		var idx uint64
		idx, err = d.node.ReadIndex(ctx)
		res = indexReply{Index: idx}
	case internalJoin:
		var req joinReq
		if err = decode(&req); err == nil {
			if req.Forwarded {
				err = d.joinHere(ctx, req.Actor, req.Member)
			} else {
				err = d.join(ctx, req.Actor, req.Member)
			}
		}
	case internalRemove:
		var req removeReq
		if err = decode(&req); err == nil {
			err = d.removeHere(ctx, req.Actor, req.ID)
		}
	case internalStatus:
		res = d.node.Status()
	default:
		err = cluster.Errorf(cluster.CodeNotFound, "no such node-to-node method %q", method)
	}
	switch {
	case errors.Is(err, cluster.ErrNotLeader):
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusMisdirectedRequest)
		_ = json.NewEncoder(w).Encode(api.Error{Code: "not_leader", Message: err.Error()})
	case err != nil:
		writeError(w, err)
	default:
		if res == nil {
			res = struct{}{}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(res)
	}
}

// retryable is a failure another attempt, perhaps at another leader, may
// not have: no leader, a former leader, a node that did not answer.
func retryable(err error) bool {
	var u *unreachableError
	return errors.Is(err, cluster.ErrNotLeader) || errors.As(err, &u)
}

// atLeader runs local when this node is the leader and remote with the
// leader's API address otherwise, again across leader changes until one
// succeeds, fails for good, or leaderTimeout passes.
func (d *Daemon) atLeader(ctx context.Context, local func(context.Context) error, remote func(ctx context.Context, addr string) error) error {
	ctx, cancel := context.WithTimeout(ctx, leaderTimeout)
	defer cancel()
	backoff := 5 * time.Millisecond
	for {
		var err error
		if d.node.IsLeader() {
			err = local(ctx)
		} else if addr, lerr := d.leaderAPI(); lerr != nil {
			err = lerr
		} else {
			err = remote(ctx, addr)
		}
		if err == nil || !retryable(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: node %s found no leader to commit on within %s; it may be cut off from a majority of the cluster (no quorum): %v",
				ErrNoLeader, d.cfg.NodeID, leaderTimeout, err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 200*time.Millisecond)
	}
}

// leaderAPI is the leader's API address, from the replicated membership.
func (d *Daemon) leaderAPI() (string, error) {
	id := d.node.LeaderID()
	if id == "" {
		return "", fmt.Errorf("no leader elected: %w", cluster.ErrNotLeader)
	}
	var m cluster.Member
	d.node.FSM().Read(func(s *cluster.State) { m = s.Members[id] })
	if m.APIAddr == "" {
		return "", fmt.Errorf("the API address of leader %s is not known here yet: %w", id, cluster.ErrNotLeader)
	}
	return m.APIAddr, nil
}

// commit gets a command committed by the leader, wherever it is, and
// applied here, so the caller reads what they wrote. Every attempt carries
// the same cmd.Request, so an attempt that was committed although it looked
// failed (the leader died before answering) does not apply twice
// (cluster/requests.go).
func (d *Daemon) commit(ctx context.Context, cmd *cluster.Command) (cluster.Response, error) {
	var r proposeReply
	err := d.atLeader(ctx,
		func(ctx context.Context) (err error) {
			r.Response, r.Index, err = d.node.Propose(ctx, cmd)
			return err
		},
		func(ctx context.Context, addr string) error {
			return d.link.call(ctx, addr, internalPropose, cmd, &r)
		})
	if err != nil {
		return cluster.Response{}, err
	}
	wait, cancel := context.WithTimeout(ctx, leaderTimeout)
	defer cancel()
	if err := d.node.WaitApplied(wait, r.Index); err != nil {
		return cluster.Response{}, fmt.Errorf("%s was committed, but this node has not applied it yet: %w", cmd.Type, err)
	}
	return r.Response, nil
}

// linearize makes this node's state include every write acknowledged
// before the call: it learns the leader's read index (cluster/reads.go) and
// waits until it has applied it.
func (d *Daemon) linearize(ctx context.Context) error {
	var idx uint64
	err := d.atLeader(ctx,
		func(ctx context.Context) (err error) {
			idx, err = d.node.ReadIndex(ctx)
			return err
		},
		func(ctx context.Context, addr string) error {
			var r indexReply
			err := d.link.call(ctx, addr, internalReadIndex, struct{}{}, &r)
			idx = r.Index
			return err
		})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, leaderTimeout)
	defer cancel()
	return d.node.WaitApplied(ctx, idx)
}

// join adds a node to the cluster (or moves it), on the leader.
func (d *Daemon) join(ctx context.Context, actor policy.ID, m cluster.Member) error {
	return d.atLeader(ctx,
		func(ctx context.Context) error { return d.joinHere(ctx, actor, m) },
		func(ctx context.Context, addr string) error {
			return d.link.call(ctx, addr, internalJoin, joinReq{Member: m, Actor: actor, Forwarded: true}, nil)
		})
}

// joinHere makes m a voter and registers its addresses; this node must be
// the leader. Joining again with the same addresses changes nothing.
func (d *Daemon) joinHere(ctx context.Context, actor policy.ID, m cluster.Member) error {
	if m.ID == "" || m.RaftAddr == "" {
		return cluster.Errorf(cluster.CodeInvalid, "a node joins with an id and a Raft address")
	}
	if !d.node.IsLeader() {
		return cluster.ErrNotLeader
	}
	if err := d.node.AddVoter(m.ID, m.RaftAddr); err != nil {
		return err
	}
	var registered cluster.Member
	d.node.FSM().Read(func(s *cluster.State) { registered = s.Members[m.ID] })
	if registered == m {
		return nil
	}
	cmd, err := cluster.NewCommand(cluster.CmdRegisterNode, actor, m)
	if err != nil {
		return err
	}
	resp, _, err := d.node.Propose(ctx, cmd)
	if err != nil {
		return err
	}
	d.log.Info("node joined", "id", m.ID, "raft", m.RaftAddr, "api", m.APIAddr)
	return resp.Err()
}

// removeHere takes a node out of the configuration and the membership; this
// node must be the leader. When it removes itself it is no longer leader
// afterwards, and the membership change goes through the next one.
func (d *Daemon) removeHere(ctx context.Context, actor policy.ID, id string) error {
	if !d.node.IsLeader() {
		return cluster.ErrNotLeader
	}
	if err := d.node.RemoveServer(id); err != nil {
		return err
	}
	cmd, err := cluster.NewCommand(cluster.CmdDeregisterNode, actor, cluster.DeregisterNode{ID: id})
	if err != nil {
		return err
	}
	resp, err := d.commit(ctx, cmd)
	if err == nil {
		err = resp.Err()
	}
	if errors.Is(err, cluster.ErrNotFound) {
		err = nil // removed from Raft only, or removed twice
	}
	if err == nil {
		d.log.Info("node removed", "id", id)
	}
	return err
}

// joinVia asks the cluster a node at addr belongs to to take this node in.
// That node passes the request on to its leader.
func (d *Daemon) joinVia(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, joinTimeout)
	defer cancel()
	req := joinReq{Member: d.self(), Actor: policy.Bootstrap}
	for {
		err := d.link.call(ctx, addr, internalJoin, req, nil)
		if err == nil {
			return nil
		}
		if cluster.CodeOf(err) == cluster.CodeDenied {
			return fmt.Errorf("%w: the node at %s refused to let this node join: %v", ErrClusterSecret, addr, err)
		}
		if !retryable(err) {
			return fmt.Errorf("join the cluster at %s: %w", addr, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("join the cluster at %s: no answer within %s: %v", addr, joinTimeout, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// self is this node as it registers.
func (d *Daemon) self() cluster.Member {
	raftAddr := d.cfg.RaftAdvertise
	if raftAddr == "" {
		raftAddr = d.cfg.RaftAddr
	}
	return cluster.Member{ID: d.cfg.NodeID, RaftAddr: raftAddr, APIAddr: d.cfg.APIAddr}
}

// register brings this node's registration up to date, when it started with
// other addresses than those registered (or on the cluster's first start).
func (d *Daemon) register(ctx context.Context) error {
	me := d.self()
	var registered cluster.Member
	d.node.FSM().Read(func(s *cluster.State) { registered = s.Members[me.ID] })
	if registered == me {
		return nil
	}
	return d.join(ctx, policy.Bootstrap, me)
}

// clusterRoutes are the cluster's API methods.
func (d *Daemon) clusterRoutes() map[string]handlerFunc {
	return map[string]handlerFunc{
		api.MClusterStatus: method(d.clusterStatusAll),
		api.MClusterJoin:   method(d.clusterJoin),
		api.MClusterRemove: method(d.clusterRemove),
		api.MClusterSweep:  method(d.sweep),
	}
}

// mayManageCluster: changing the membership, like managing users, is the
// system administrator's.
func (d *Daemon) mayManageCluster(c caller, what string) error {
	if dec := d.decide(c.Principal, policy.ActManageUsers, policy.Target{ID: policy.System}); !dec.Allowed {
		return cluster.Errorf(cluster.CodeDenied, "permission denied: %s needs %s", what, dec.Missing)
	}
	return nil
}

func (d *Daemon) clusterJoin(ctx context.Context, c caller, req api.ClusterJoinReq) (any, error) {
	if err := d.mayManageCluster(c, "adding a node"); err != nil {
		return nil, err
	}
	m := cluster.Member{ID: req.ID, RaftAddr: req.RaftAddr, APIAddr: req.APIAddr}
	if m.ID == "" || m.RaftAddr == "" || m.APIAddr == "" {
		return nil, cluster.Errorf(cluster.CodeInvalid, "a node joins with an id, a Raft address and an API address")
	}
	if err := d.join(ctx, c.Principal, m); err != nil {
		return nil, err
	}
	return d.clusterStatusAll(ctx, c, struct{}{})
}

func (d *Daemon) clusterRemove(ctx context.Context, c caller, req api.ClusterRemoveReq) (any, error) {
	if err := d.mayManageCluster(c, "removing a node"); err != nil {
		return nil, err
	}
	if req.ID == "" {
		return nil, cluster.Errorf(cluster.CodeInvalid, "which node? the id is empty")
	}
	err := d.atLeader(ctx,
		func(ctx context.Context) error { return d.removeHere(ctx, c.Principal, req.ID) },
		func(ctx context.Context, addr string) error {
			return d.link.call(ctx, addr, internalRemove, removeReq{ID: req.ID, Actor: c.Principal}, nil)
		})
	if err != nil {
		return nil, err
	}
	return d.clusterStatusAll(ctx, c, struct{}{})
}

// clusterStatusAll asks every node of the configuration for its status, in
// parallel and each within statusTimeout, so a dead node costs no more.
func (d *Daemon) clusterStatusAll(ctx context.Context, c caller, _ struct{}) (any, error) {
	servers, err := d.node.Servers()
	if err != nil {
		return nil, err
	}
	members := map[string]cluster.Member{}
	d.node.FSM().Read(func(s *cluster.State) {
		for id, m := range s.Members {
			members[id] = m
		}
	})
	out := api.ClusterStatus{Node: d.cfg.NodeID, Nodes: make([]api.NodeStatus, len(servers))}
	out.Leader = d.node.LeaderID()
	var wg sync.WaitGroup
	for i, s := range servers {
		row := &out.Nodes[i]
		*row = api.NodeStatus{ID: s.ID, RaftAddr: s.RaftAddr, APIAddr: members[s.ID].APIAddr, Voter: s.Voter}
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := d.nodeStatus(ctx, s.ID, row.APIAddr)
			fillStatus(row, st, err)
		}()
	}
	wg.Wait()
	if d.mayManageCluster(c, "") != nil {
		for i := range out.Nodes {
			out.Nodes[i].StateHash = ""
		}
	}
	return out, nil
}

func (d *Daemon) nodeStatus(ctx context.Context, id, addr string) (cluster.Status, error) {
	if id == d.cfg.NodeID {
		return d.node.Status(), nil
	}
	if addr == "" {
		return cluster.Status{}, errors.New("its API address is not registered")
	}
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	var st cluster.Status
	return st, d.link.call(ctx, addr, internalStatus, struct{}{}, &st)
}

// staleContact is how long a follower may go without hearing from a
// leader before its status says so: several heartbeats.
const staleContact = 2 * time.Second

func fillStatus(row *api.NodeStatus, st cluster.Status, err error) {
	if err != nil {
		row.Health = "unreachable: " + err.Error()
		return
	}
	row.State, row.SeesLeader, row.Term = st.State, st.Leader, st.Term
	row.Leader = st.State == "Leader"
	row.CommitIndex, row.AppliedIndex, row.LastSnapshotIndex = st.CommitIndex, st.AppliedIndex, st.LastSnapshotIndex
	row.LastContactMS, row.StateHash = st.LastContactMS, st.StateHash
	switch {
	case row.Leader:
		row.Health = "ok"
	case st.Leader == "":
		row.Health = "no leader: it cannot reach a quorum, so it cannot commit"
	case st.LastContactMS < 0 || time.Duration(st.LastContactMS)*time.Millisecond > staleContact:
		row.Health = fmt.Sprintf("stale: no contact with leader %s for %s", st.Leader, time.Duration(st.LastContactMS)*time.Millisecond)
	default:
		row.Health = "ok"
	}
}
