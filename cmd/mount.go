package cmd

import (
	"fmt"
	"io"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/sphere-sandbox/sphere/daemon/api"
)

func cmdMount() *cli.Command {
	return &cli.Command{
		Name:      "mount",
		Usage:     "mount a project as a directory (the daemon serves it; every user sees what they may), or list this node's mounts",
		ArgsUsage: "[ORG/C/P DIR]",
		Action:    mount,
	}
}

func cmdUmount() *cli.Command {
	return &cli.Command{Name: "umount", Usage: "unmount a project", ArgsUsage: "DIR", Action: umount}
}

func mount(c *cli.Context) error {
	if c.NArg() == 0 {
		var ms []api.Mount
		if err := call(c, api.MMountList, struct{}{}, &ms); err != nil {
			return err
		}
		return output(c, ms, func(w io.Writer) {
			fmt.Fprintln(w, "PROJECT\tDIR")
			for _, m := range ms {
				fmt.Fprintf(w, "%s\t%s\n", m.Project, m.Dir)
			}
		})
	}
	a, err := args(c, "ORG/C/P", "DIR")
	if err != nil {
		return err
	}
	dir, err := filepath.Abs(a[1])
	if err != nil {
		return usagef("DIR: %v", err)
	}
	req := api.MountReq{Project: a[0], Dir: dir}
	if err := call(c, api.MMount, req, nil); err != nil {
		return err
	}
	return output(c, req, func(w io.Writer) { fmt.Fprintf(w, "mounted %s at %s\n", req.Project, req.Dir) })
}

func umount(c *cli.Context) error {
	a, err := args(c, "DIR")
	if err != nil {
		return err
	}
	dir, err := filepath.Abs(a[0])
	if err != nil {
		return usagef("DIR: %v", err)
	}
	if err := call(c, api.MUmount, api.DirReq{Dir: dir}, nil); err != nil {
		return err
	}
	return output(c, api.DirReq{Dir: dir}, func(w io.Writer) { fmt.Fprintf(w, "unmounted %s\n", dir) })
}
