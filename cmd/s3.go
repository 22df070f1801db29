package cmd

import (
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/sphere-sandbox/sphere/daemon/api"
)

func cmdS3() *cli.Command {
	return &cli.Command{
		Name:  "s3",
		Usage: "S3 connectors: buckets mounted as s3/NAME/ in a project while activated",
		Subcommands: []*cli.Command{
			{Name: "create", Usage: "create a connector; the endpoint, bucket and key are checked now", ArgsUsage: "ORG/C/P NAME",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "endpoint", Required: true, Usage: "http(s)://HOST:PORT of the S3 service; several, comma-separated, for the nodes of one (tried in order)"},
					&cli.StringFlag{Name: "bucket", Required: true, Usage: "the bucket"},
					&cli.StringFlag{Name: "key-id", Required: true, Usage: "the static key's id"},
					&cli.StringFlag{Name: "key-secret", Required: true, Usage: "the project secret holding the static key's value"},
					&cli.StringFlag{Name: "mode", Value: "ro", Usage: "ro (read-only) or rw (read-write)"},
					&cli.StringFlag{Name: "backend", Value: "s3", Usage: "the storage backend's name, for people"},
					descriptionFlag,
				},
				Action: s3Create},
			{Name: "list", Usage: "list a project's connectors (own and published)", ArgsUsage: "ORG/C/P", Action: s3List},
			{Name: "show", Usage: "show a connector's fields", ArgsUsage: "ORG/C/P NAME", Action: s3Show},
			{Name: "set", Usage: "change a connector's mode or description; mounts use the new mode from their next operation", ArgsUsage: "ORG/C/P NAME",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "mode", Usage: "ro (read-only) or rw (read-write)"},
					descriptionFlag,
				},
				Action: s3Set},
			{Name: "activate", Usage: "make s3/NAME appear in the project's mounts", ArgsUsage: "ORG/C/P NAME", Action: s3Activate(true)},
			{Name: "deactivate", Usage: "remove s3/NAME from the project's mounts", ArgsUsage: "ORG/C/P NAME", Action: s3Activate(false)},
			{Name: "delete", Usage: "delete a connector", ArgsUsage: "ORG/C/P NAME", Action: s3Delete},
		},
	}
}

func s3Ref(a []string) string { return "resource:" + a[0] + "/s3/" + a[1] }

func s3Create(c *cli.Context) error {
	a, err := args(c, "ORG/C/P", "NAME")
	if err != nil {
		return err
	}
	req := api.S3CreateReq{Project: a[0], Name: a[1], Endpoint: c.String("endpoint"), Bucket: c.String("bucket"),
		KeyID: c.String("key-id"), KeySecret: c.String("key-secret"), Mode: c.String("mode"), Backend: c.String("backend"),
		Description: c.String("description")}
	var e api.Entity
	if err := call(c, api.MS3Create, req, &e); err != nil {
		return err
	}
	return printEntity(c, e)
}

func s3List(c *cli.Context) error {
	a, err := args(c, "ORG/C/P")
	if err != nil {
		return err
	}
	var out []api.Entity
	if err := call(c, api.MList, api.ListReq{Kind: "resource", Type: "s3", Parent: a[0]}, &out); err != nil {
		return err
	}
	return output(c, out, func(w io.Writer) {
		fmt.Fprintln(w, "PATH\tENDPOINT\tBUCKET\tMODE\tACTIVE\tCREATOR\tCREATED (UTC)")
		for _, e := range out {
			path := e.Path
			if e.Owner != "" {
				path += " (published from " + e.Owner + ")"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", path, e.Settings["endpoint"], e.Settings["bucket"], e.Settings["mode"], e.Settings["active"], e.Creator, utc(e.Created))
		}
	})
}

func s3Show(c *cli.Context) error {
	a, err := args(c, "ORG/C/P", "NAME")
	if err != nil {
		return err
	}
	var e api.Entity
	if err := call(c, api.MShow, api.RefReq{Ref: s3Ref(a)}, &e); err != nil {
		return err
	}
	return printEntity(c, e)
}

func s3Set(c *cli.Context) error {
	a, err := args(c, "ORG/C/P", "NAME")
	if err != nil {
		return err
	}
	req := setReq(c, s3Ref(a))
	if c.IsSet("mode") {
		req.Settings = map[string]string{"mode": c.String("mode")}
	}
	if req.Description == nil && req.Settings == nil {
		return usagef("s3 set changes --mode or --description; give at least one")
	}
	var e api.Entity
	if err := call(c, api.MSet, req, &e); err != nil {
		return err
	}
	return printEntity(c, e)
}

func s3Activate(active bool) cli.ActionFunc {
	return func(c *cli.Context) error {
		a, err := args(c, "ORG/C/P", "NAME")
		if err != nil {
			return err
		}
		var e api.Entity
		if err := call(c, api.MS3Activate, api.S3ActivateReq{Ref: s3Ref(a), Active: active}, &e); err != nil {
			return err
		}
		return printEntity(c, e)
	}
}

func s3Delete(c *cli.Context) error {
	a, err := args(c, "ORG/C/P", "NAME")
	if err != nil {
		return err
	}
	if err := call(c, api.MDelete, api.RefReq{Ref: s3Ref(a)}, nil); err != nil {
		return err
	}
	return output(c, map[string]string{"deleted": s3Ref(a)}, func(w io.Writer) { fmt.Fprintf(w, "deleted connector %s\n", a[1]) })
}
