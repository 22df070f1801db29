package cmd

import (
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/sphere-sandbox/sphere/daemon/api"
)

var communityFlag = &cli.StringFlag{Name: "community", Required: true, Usage: "ORG/COMMUNITY to publish in"}

func cmdShare() *cli.Command {
	return &cli.Command{Name: "share", Usage: "publish a project's resource in a community of the same organization",
		ArgsUsage: "resource:ORG/C/P/{secrets,datasets,s3}/NAME", Flags: []cli.Flag{communityFlag}, Action: shareAction(api.MShare, "published", "in")}
}

func cmdUnshare() *cli.Command {
	return &cli.Command{Name: "unshare", Usage: "withdraw a resource's publication from a community",
		ArgsUsage: "resource:ORG/C/P/{secrets,datasets,s3}/NAME", Flags: []cli.Flag{communityFlag}, Action: shareAction(api.MUnshare, "withdrew", "from")}
}

func shareAction(method, done, prep string) cli.ActionFunc {
	return func(c *cli.Context) error {
		a, err := args(c, "resource:PATH")
		if err != nil {
			return err
		}
		req := api.ShareReq{Resource: a[0], Community: c.String("community")}
		if err := call(c, method, req, nil); err != nil {
			return err
		}
		return output(c, req, func(w io.Writer) { fmt.Fprintf(w, "%s %s %s community %s\n", done, req.Resource, prep, req.Community) })
	}
}
