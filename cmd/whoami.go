package cmd

import (
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/sphere-sandbox/sphere/daemon/api"
)

func cmdWhoAmI() *cli.Command {
	return &cli.Command{Name: "whoami", Usage: "who the daemon takes you for", Action: whoami}
}

func whoami(c *cli.Context) error {
	if _, err := args(c); err != nil {
		return err
	}
	var w api.WhoAmI
	if err := call(c, api.MWhoAmI, struct{}{}, &w); err != nil {
		return err
	}
	return output(c, w, func(out io.Writer) {
		state := "registered"
		if !w.Registered {
			state = "not registered (anonymous)"
		}
		fmt.Fprintf(out, "uid:\t%d\nprincipal:\t%s\nstatus:\t%s\ngroups:\t%s\n", w.UID, w.Principal, state, strings.Join(w.Groups, ", "))
	})
}
