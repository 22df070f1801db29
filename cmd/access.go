package cmd

import (
	"errors"
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/sphere-sandbox/sphere/daemon/api"
	"github.com/sphere-sandbox/sphere/policy"
)

func cmdAccess() *cli.Command {
	return &cli.Command{
		Name:  "access",
		Usage: "explain access decisions",
		Subcommands: []*cli.Command{{
			Name:      "check",
			Usage:     "allow or deny, with the chain of bindings that decided it",
			ArgsUsage: "ACTION KIND:PATH",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "as", Usage: "the principal to check (user:NAME, ...); you when omitted"},
				&cli.StringFlag{Name: "via", Usage: "community:ORG/C to publish into, or project:ORG/C/P a published resource is used from"},
				&cli.StringFlag{Name: "role", Usage: "the role being granted, for grant and revoke"},
			},
			Action: accessCheck,
		}},
	}
}

func accessCheck(c *cli.Context) error {
	a, err := args(c, "ACTION", "KIND:PATH")
	if err != nil {
		return err
	}
	req := api.CheckReq{As: c.String("as"), Action: a[0], Target: a[1], Via: c.String("via"), Role: c.String("role")}
	var e policy.Explanation
	if err := call(c, api.MAccessCheck, req, &e); err != nil {
		return err
	}
	if err := output(c, e, func(w io.Writer) { fmt.Fprint(w, e.String()) }); err != nil {
		return err
	}
	// Like `kubectl auth can-i`: scripts can test the answer by exit status.
	if !e.Allowed {
		return exitError{code: exitDenied, err: errors.New("denied")}
	}
	return nil
}
