package cluster

import (
	"fmt"
	"net"
	"sort"
	"time"

	"github.com/hashicorp/raft"

	"github.com/sphere-sandbox/sphere/policy"
)

// Raft's configuration knows each server's id and Raft address; the daemon
// also needs its API address to forward writes and reads to the leader. Both
// live in the replicated state, registered by a node.register command, so
// every node learns every other's addresses the same way it learns anything.

// Membership commands.
const (
	CmdRegisterNode   CommandType = "node.register"
	CmdDeregisterNode CommandType = "node.deregister"
)

// Member is a node of the cluster as it registered. APIAddr is empty for a
// node without a remote API (a single node): nobody can forward to it.
type Member struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	APIAddr  string `json:"api_addr,omitempty"`
}

// DeregisterNode is node.deregister's payload; node.register's is a Member.
type DeregisterNode struct {
	ID string `json:"id"`
}

func init() {
	handlers[CmdRegisterNode] = applyRegisterNode
	handlers[CmdDeregisterNode] = applyDeregisterNode
}

// Changing the membership is the system administrator's, like managing
// users: the daemon proposes these as root when a node holding the cluster
// secret asks, and as the caller when an administrator does.
func applyRegisterNode(s *State, c *Command) (policy.ID, error) {
	m := decode[Member](c)
	if err := authorize(s, c, policy.ActManageUsers, policy.Target{ID: policy.System}); err != nil {
		return 0, err
	}
	if m.ID == "" {
		return 0, Errorf(CodeInvalid, "invalid node: the id is empty")
	}
	if _, _, err := net.SplitHostPort(m.RaftAddr); err != nil {
		return 0, Errorf(CodeInvalid, "invalid node %s: Raft address %q is not HOST:PORT", m.ID, m.RaftAddr)
	}
	if _, _, err := net.SplitHostPort(m.APIAddr); m.APIAddr != "" && err != nil {
		return 0, Errorf(CodeInvalid, "invalid node %s: API address %q is not HOST:PORT", m.ID, m.APIAddr)
	}
	s.Members[m.ID] = m
	return 0, nil
}

func applyDeregisterNode(s *State, c *Command) (policy.ID, error) {
	p := decode[DeregisterNode](c)
	if err := authorize(s, c, policy.ActManageUsers, policy.Target{ID: policy.System}); err != nil {
		return 0, err
	}
	if _, ok := s.Members[p.ID]; !ok {
		return 0, Errorf(CodeNotFound, "node %q is not registered", p.ID)
	}
	delete(s.Members, p.ID)
	return 0, nil
}

func (s *State) sortedMembers() []Member {
	out := make([]Member, 0, len(s.Members))
	for _, m := range s.Members {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Server is a voter or non-voter of the Raft configuration.
type Server struct {
	ID       string
	RaftAddr string
	Voter    bool
}

// Servers is the latest Raft configuration this node knows of; a follower
// knows it too, from the log.
func (n *Node) Servers() ([]Server, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, fmt.Errorf("read the cluster configuration: %w", err)
	}
	var out []Server
	for _, s := range f.Configuration().Servers {
		out = append(out, Server{ID: string(s.ID), RaftAddr: string(s.Address), Voter: s.Suffrage == raft.Voter})
	}
	return out, nil
}

// membershipTimeout bounds one configuration change: it commits like any
// entry, so it only waits longer when there is no quorum.
const membershipTimeout = 10 * time.Second

// AddVoter makes a server a voter at raftAddr, on the leader. The same id
// at the same address again changes nothing and writes no log entry; the
// same id at another address moves it there.
func (n *Node) AddVoter(id, raftAddr string) error {
	servers, err := n.Servers()
	if err != nil {
		return err
	}
	for _, s := range servers {
		if s.ID == id && s.RaftAddr == raftAddr && s.Voter {
			return nil
		}
	}
	return leaderError(n.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(raftAddr), 0, membershipTimeout).Error(), "add "+id)
}

// RemoveServer takes a server out of the configuration, on the leader. A
// server that is not there is already removed.
func (n *Node) RemoveServer(id string) error {
	servers, err := n.Servers()
	if err != nil {
		return err
	}
	for _, s := range servers {
		if s.ID == id {
			return leaderError(n.raft.RemoveServer(raft.ServerID(id), 0, membershipTimeout).Error(), "remove "+id)
		}
	}
	return nil
}
