package cmd

import (
	"fmt"
	"io"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/sphere-sandbox/sphere/cluster"
	"github.com/sphere-sandbox/sphere/daemon/api"
)

func cmdCluster() *cli.Command {
	return &cli.Command{
		Name:  "cluster",
		Usage: "the Raft cluster this node belongs to",
		Subcommands: []*cli.Command{
			{Name: "status", Usage: "every node: addresses, leader, term, applied index, health (state hashes for admins)", Action: clusterStatus},
			{Name: "join", Usage: "add a node, or move it to new addresses (admin): ID RAFT-ADDR API-ADDR", ArgsUsage: "ID RAFT-ADDR API-ADDR", Action: clusterJoin},
			{Name: "remove", Usage: "take a node out of the cluster (admin)", ArgsUsage: "ID", Action: clusterRemove},
			{Name: "snapshot", Usage: "take a Raft snapshot on this node now (admin)", Action: clusterSnapshot},
			{Name: "sweep", Usage: "delete the blobs no dataset or model file references any more (admin)",
				Flags: []cli.Flag{
					&cli.DurationFlag{Name: "grace", Value: 24 * time.Hour, Usage: "spare blobs written less than this long ago: a write taking longer than this when a sweep runs fails and must be done again"},
					&cli.BoolFlag{Name: "dry-run", Usage: "report what would be deleted, delete nothing"},
				},
				Action: clusterSweep},
		},
	}
}

func clusterStatus(c *cli.Context) error {
	if _, err := args(c); err != nil {
		return err
	}
	return showCluster(c, api.MClusterStatus, struct{}{})
}

func clusterJoin(c *cli.Context) error {
	a, err := args(c, "ID", "RAFT-ADDR", "API-ADDR")
	if err != nil {
		return err
	}
	return showCluster(c, api.MClusterJoin, api.ClusterJoinReq{ID: a[0], RaftAddr: a[1], APIAddr: a[2]})
}

func clusterRemove(c *cli.Context) error {
	a, err := args(c, "ID")
	if err != nil {
		return err
	}
	return showCluster(c, api.MClusterRemove, api.ClusterRemoveReq{ID: a[0]})
}

// showCluster calls a method answering with the cluster's status and prints it.
func showCluster(c *cli.Context, method string, req any) error {
	var st api.ClusterStatus
	if err := call(c, method, req, &st); err != nil {
		return err
	}
	return output(c, st, func(w io.Writer) {
		fmt.Fprintf(w, "answered by %s; leader %s\n", st.Node, orDash(st.Leader))
		fmt.Fprintln(w, "NODE\tRAFT\tAPI\tSTATE\tTERM\tAPPLIED\tLAST CONTACT\tHEALTH")
		for _, n := range st.Nodes {
			state := orDash(n.State)
			if !n.Voter {
				state += " (non-voter)"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\n", n.ID, n.RaftAddr, orDash(n.APIAddr), state, n.Term, n.AppliedIndex, contact(n), n.Health)
		}
	})
}

func contact(n api.NodeStatus) string {
	switch {
	case n.Leader:
		return "leader"
	case n.State == "":
		return "-"
	case n.LastContactMS < 0:
		return "never"
	}
	return (time.Duration(n.LastContactMS) * time.Millisecond).String() + " ago"
}

func clusterSnapshot(c *cli.Context) error {
	if _, err := args(c); err != nil {
		return err
	}
	var st cluster.Status
	if err := call(c, api.MSnapshot, struct{}{}, &st); err != nil {
		return err
	}
	return output(c, st, func(w io.Writer) {
		fmt.Fprintln(w, "NODE\tSTATE\tTERM\tAPPLIED INDEX\tSNAPSHOT INDEX")
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\n", st.NodeID, st.State, st.Term, st.AppliedIndex, st.LastSnapshotIndex)
	})
}

func clusterSweep(c *cli.Context) error {
	if _, err := args(c); err != nil {
		return err
	}
	if c.Duration("grace") < 0 {
		return usagef("--grace must not be negative, not %v", c.Duration("grace"))
	}
	var r api.SweepReply
	// Deleting 100,000 blobs from S3 takes minutes.
	if err := callWithin(c, time.Hour, api.MClusterSweep, api.SweepReq{Grace: c.Duration("grace"), DryRun: c.Bool("dry-run")}, &r); err != nil {
		return err
	}
	return output(c, r, func(w io.Writer) {
		fmt.Fprintf(w, "blobs:\t%d (%s)\n", r.Blobs, humanBytes(r.Bytes))
		fmt.Fprintf(w, "referenced:\t%d\n", r.Referenced)
		fmt.Fprintf(w, "unreferenced, within the grace:\t%d\n", r.Fresh)
		if c.Bool("dry-run") {
			fmt.Fprintf(w, "would delete:\t%d (%s)\n", r.Doomed, humanBytes(r.DoomedBytes))
		} else {
			fmt.Fprintf(w, "deleted:\t%d (%s)\n", r.Deleted, humanBytes(r.DeletedBytes))
		}
		if r.Left > 0 {
			fmt.Fprintf(w, "left for the next sweep:\t%d\n", r.Left)
		}
		fmt.Fprintf(w, "generation:\t%d\n", r.Epoch)
	})
}
