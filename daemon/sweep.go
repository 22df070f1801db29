package daemon

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sphere-sandbox/sphere/cluster"
	"github.com/sphere-sandbox/sphere/daemon/api"
	"github.com/sphere-sandbox/sphere/daemon/datastore"
	"github.com/sphere-sandbox/sphere/policy"
)

// errNoSweep: the configured blob store cannot list or delete its blobs.
var errNoSweep = errors.New("this blob store cannot be swept: it cannot list or delete blobs")

// sweep deletes the blobs no file references and that are older than the
// grace. The state machine decides which blobs are doomed (cluster/sweep.go);
// this only lists, proposes and deletes, so any node may run it, two may run
// at once, and one that dies half way leaves blobs the next sweep finds.
func (d *Daemon) sweep(ctx context.Context, c caller, req api.SweepReq) (any, error) {
	if err := d.mayManageCluster(c, "sweeping the blob store"); err != nil {
		return nil, err
	}
	if req.Grace < 0 {
		return nil, cluster.Errorf(cluster.CodeInvalid, "--grace must not be negative, not %v", req.Grace)
	}
	return d.sweepBlobs(ctx, c, req)
}

// startSweeps makes the leader sweep every Config.SweepEvery, as the
// bootstrap administrator.
func (d *Daemon) startSweeps() {
	if d.cfg.SweepEvery <= 0 {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	d.stopSweeps = cancel
	d.sweeps.Go(func() {
		tick := time.NewTicker(d.cfg.SweepEvery)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if !d.node.IsLeader() {
				continue
			}
			if _, err := d.sweepBlobs(ctx, caller{Principal: policy.Bootstrap, Name: "root"}, api.SweepReq{Grace: d.cfg.SweepGrace}); err != nil && ctx.Err() == nil {
				d.log.Warn("sweeping the blob store failed; the next sweep tries again", "err", err)
			}
		}
	})
}

func (d *Daemon) sweepBlobs(ctx context.Context, c caller, req api.SweepReq) (api.SweepReply, error) {
	store, ok := d.data.Sweeper()
	if !ok {
		return api.SweepReply{}, errNoSweep
	}
	cutoff := time.Now().Add(-req.Grace)
	var rep api.SweepReply
	type listed struct {
		blob  cluster.Blob
		fresh bool // within the grace
	}
	var all []listed
	sizes := map[cluster.Blob]int64{}
	err := store.List(ctx, func(b datastore.BlobInfo) error {
		hash, gen, _ := datastore.ParseBlobKey(b.Key)
		blob := cluster.Blob{Hash: hash, Gen: gen}
		if _, seen := sizes[blob]; seen { // listed again after a failover
			return nil
		}
		sizes[blob] = b.Size
		rep.Blobs++
		rep.Bytes += b.Size
		all = append(all, listed{blob, b.Modified.After(cutoff)})
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("list the blob store: %w", err)
	}
	// The state machine checks again when it applies the sweep; this
	// keeps referenced blobs out of the proposal and the report.
	var candidates []cluster.Blob
	d.node.FSM().Read(func(s *cluster.State) {
		rep.Epoch = s.Sweep.Epoch
		for _, l := range all {
			switch {
			case s.Referenced(l.blob):
				rep.Referenced++
			case l.fresh:
				rep.Fresh++
			case len(candidates) == cluster.MaxSweepCandidates:
				rep.Left++
			default:
				candidates = append(candidates, l.blob)
			}
		}
	})
	if req.DryRun {
		rep.Doomed = len(candidates)
		for _, b := range candidates {
			rep.DoomedBytes += sizes[b]
		}
		return rep, nil
	}
	if _, err := d.propose(ctx, c, cluster.CmdSweep, cluster.Sweep{Candidates: candidates}); err != nil {
		return rep, err
	}
	// What the state machine doomed, which this node has applied by now.
	// A sweep committed meanwhile elsewhere may have replaced it: what it
	// doomed is as safe to delete.
	var doomed []cluster.Blob
	d.node.FSM().Read(func(s *cluster.State) { rep.Epoch, doomed = s.Sweep.Epoch, s.DoomedBlobs() })
	rep.Doomed = len(doomed)
	for _, b := range doomed {
		rep.DoomedBytes += sizes[b]
	}
	if err := deleteBlobs(ctx, store, doomed, func(b cluster.Blob) {
		rep.Deleted++
		rep.DeletedBytes += sizes[b]
	}); err != nil {
		return rep, fmt.Errorf("deleted %d of %d doomed blobs (the next sweep deletes the rest): %w", rep.Deleted, len(doomed), err)
	}
	d.log.Info("swept the blob store", "epoch", rep.Epoch, "blobs", rep.Blobs, "referenced", rep.Referenced,
		"fresh", rep.Fresh, "deleted", rep.Deleted, "deleted_bytes", rep.DeletedBytes)
	return rep, nil
}

// deleters is how many deletes a sweep keeps in flight: an S3 delete is a
// round trip and little work, so a few at once go that much faster.
const deleters = 8

// deleteBlobs deletes blobs, calling deleted (one call at a time) for each
// one gone, and stops at the first failure.
func deleteBlobs(ctx context.Context, store datastore.Sweeper, blobs []cluster.Blob, deleted func(cluster.Blob)) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	work := make(chan cluster.Blob)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range deleters {
		wg.Go(func() {
			for b := range work {
				if err := store.Delete(ctx, datastore.BlobKey(b.Hash, b.Gen)); err != nil {
					cancel(err)
					continue
				}
				mu.Lock()
				deleted(b)
				mu.Unlock()
			}
		})
	}
feed:
	for _, b := range blobs {
		select {
		case work <- b:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	return context.Cause(ctx)
}
