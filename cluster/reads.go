package cluster

import (
	"context"
	"fmt"
	"time"
)

// Reads are served from the local state. A linearizable read must in
// addition see every write acknowledged before it began; ReadIndex and
// WaitApplied give that without writing to the log for every read.
//
// A write is acknowledged only after the leader's state machine applied it,
// so a leader's applied index covers every write it acknowledged. It covers
// those its predecessors acknowledged only once it has committed an entry of
// its own term: until then entries of earlier terms may sit committed
// elsewhere and not yet known to be so here. The first ReadIndex of a term
// therefore waits for a barrier. VerifyLeader, after the index is read,
// makes sure no newer leader could have acknowledged anything before it.

// ReadIndex returns, on the leader, an index whose application makes a read
// linearizable. Elsewhere it returns ErrNotLeader.
func (n *Node) ReadIndex(ctx context.Context) (uint64, error) {
	if !n.IsLeader() {
		return 0, ErrNotLeader
	}
	if term := n.raft.CurrentTerm(); n.readyTerm.Load() != term {
		timeout := 10 * time.Second
		if d, ok := ctx.Deadline(); ok {
			timeout = time.Until(d)
		}
		if err := n.raft.Barrier(timeout).Error(); err != nil {
			return 0, leaderError(err, "barrier")
		}
		n.readyTerm.Store(term)
	}
	idx := n.applied.Load()
	if err := n.raft.VerifyLeader().Error(); err != nil {
		return 0, leaderError(err, "verify leadership")
	}
	return idx, nil
}

// WaitApplied waits until the state machine has applied index idx.
func (n *Node) WaitApplied(ctx context.Context, idx uint64) error {
	for {
		n.mu.Lock()
		ch := n.advanced
		n.mu.Unlock()
		if n.applied.Load() >= idx {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("catch up to index %d (applied %d): %w", idx, n.applied.Load(), ctx.Err())
		}
	}
}

// AppliedIndex is the index of the last command the state machine applied.
func (n *Node) AppliedIndex() uint64 { return n.applied.Load() }
