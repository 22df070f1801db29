package cmd

import (
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/sphere-sandbox/sphere/daemon/api"
)

var (
	toFlag = &cli.StringFlag{Name: "to", Required: true, Usage: "user:NAME, service-account:ORG/CLOUD/FOLDER/NAME, group:allUsers or group:allAuthenticatedUsers"}
	onFlag = &cli.StringFlag{Name: "on", Required: true, Usage: "KIND:PATH, KIND one of org, community, project, resource, cloud, folder, service-account"}
)

func cmdRole() *cli.Command {
	return &cli.Command{
		Name:  "role",
		Usage: "role bindings: a principal's role on an entity and everything under it",
		Subcommands: []*cli.Command{
			{Name: "grant", Usage: "bind a role", ArgsUsage: "ROLE", Flags: []cli.Flag{toFlag, onFlag}, Action: roleChange(api.MRoleGrant, "granted", "to")},
			{Name: "revoke", Usage: "remove a binding", ArgsUsage: "ROLE", Flags: []cli.Flag{
				&cli.StringFlag{Name: "from", Aliases: []string{"to"}, Required: true, Usage: toFlag.Usage}, onFlag}, Action: roleChange(api.MRoleRevoke, "revoked", "from")},
			{Name: "list", Usage: "list the bindings on an entity", Flags: []cli.Flag{onFlag}, Action: roleList},
		},
	}
}

func roleChange(method, done, prep string) cli.ActionFunc {
	return func(c *cli.Context) error {
		a, err := args(c, "ROLE")
		if err != nil {
			return err
		}
		who := c.String("to")
		if c.Command.Name == "revoke" {
			who = c.String("from")
		}
		req := api.GrantReq{Role: a[0], Principal: who, On: c.String("on")}
		if err := call(c, method, req, nil); err != nil {
			return err
		}
		return output(c, req, func(w io.Writer) {
			fmt.Fprintf(w, "%s %s %s %s on %s\n", done, req.Role, prep, req.Principal, req.On)
		})
	}
}

func roleList(c *cli.Context) error {
	if _, err := args(c); err != nil {
		return err
	}
	var bs []api.Binding
	if err := call(c, api.MRoleList, api.RefReq{Ref: c.String("on")}, &bs); err != nil {
		return err
	}
	return output(c, bs, func(w io.Writer) {
		fmt.Fprintln(w, "PRINCIPAL\tROLE\tON")
		for _, b := range bs {
			fmt.Fprintf(w, "%s\t%s\t%s\n", b.Principal, b.Role, b.On)
		}
	})
}
