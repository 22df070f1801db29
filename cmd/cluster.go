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
