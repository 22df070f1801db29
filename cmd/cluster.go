package cmd

import (
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/sphere-sandbox/sphere/cluster"
	"github.com/sphere-sandbox/sphere/daemon/api"
)

func cmdCluster() *cli.Command {
	return &cli.Command{
		Name:  "cluster",
		Usage: "the Raft cluster this node belongs to",
		Subcommands: []*cli.Command{
			{Name: "status", Usage: "this node's view: state, leader, term, applied index", Action: clusterStatus(api.MClusterStatus)},
			{Name: "snapshot", Usage: "take a Raft snapshot now (admin)", Action: clusterStatus(api.MSnapshot)},
		},
	}
}

func clusterStatus(method string) cli.ActionFunc {
	return func(c *cli.Context) error {
		if _, err := args(c); err != nil {
			return err
		}
		var st cluster.Status
		if err := call(c, method, struct{}{}, &st); err != nil {
			return err
		}
		return output(c, st, func(w io.Writer) {
			fmt.Fprintln(w, "NODE\tSTATE\tLEADER\tTERM\tCOMMIT INDEX\tAPPLIED INDEX")
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\n", st.NodeID, st.State, orDash(st.Leader), st.Term, st.CommitIndex, st.AppliedIndex)
		})
	}
}
