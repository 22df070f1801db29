package cluster

import "time"

// Barrier waits until every entry committed before it has been applied to
// this node's state machine. A restarted leader applies the entries after
// its last snapshot only once it has committed one of its own term, so
// anything that reads the state at start-up must pass a barrier first.
func (n *Node) Barrier(timeout time.Duration) error {
	return n.raft.Barrier(timeout).Error()
}
