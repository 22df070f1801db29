package cmd

import (
	"fmt"
	"io"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/sphere-sandbox/sphere/daemon"
	"github.com/sphere-sandbox/sphere/daemon/api"
)

func cmdSecret() *cli.Command {
	return &cli.Command{
		Name:  "secret",
		Usage: "a project's secrets: encrypted values, files in secrets/ and environment variables in `sphere exec`",
		Subcommands: []*cli.Command{
			{Name: "create", Usage: "create a secret; the value comes from stdin or --from-file", ArgsUsage: "ORG/C/P NAME",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "from-file", Usage: "read the value from this file"},
					&cli.BoolFlag{Name: "replace", Usage: "replace the value if the secret exists"},
				},
				Action: secretPut(false)},
			{Name: "set", Usage: "replace a secret's value (from stdin or --from-file)", ArgsUsage: "ORG/C/P NAME",
				Flags:  []cli.Flag{&cli.StringFlag{Name: "from-file", Usage: "read the value from this file"}},
				Action: secretPut(true)},
			{Name: "list", Usage: "list a project's secrets (names only)", ArgsUsage: "ORG/C/P", Action: secretList},
			{Name: "show", Usage: "show a secret's metadata (never its value)", ArgsUsage: "ORG/C/P NAME", Action: secretShow},
			{Name: "delete", Usage: "delete a secret", ArgsUsage: "ORG/C/P NAME", Action: secretDelete},
		},
	}
}

// secretPut creates a secret, or with replace sets the value of one that
// must exist (create --replace creates or replaces).
func secretPut(replace bool) cli.ActionFunc {
	return func(c *cli.Context) error {
		a, err := args(c, "ORG/C/P", "NAME")
		if err != nil {
			return err
		}
		if replace {
			var e api.Entity
			if err := call(c, api.MShow, api.RefReq{Ref: secretRef(a)}, &e); err != nil {
				return err
			}
		}
		return putValue(c, a, replace || c.Bool("replace"))
	}
}

func putValue(c *cli.Context, a []string, replace bool) error {
	in := io.Reader(os.Stdin)
	if f := c.String("from-file"); f != "" {
		file, err := os.Open(f)
		if err != nil {
			return usagef("--from-file: %v", err)
		}
		defer file.Close()
		in = file
	}
	value, err := io.ReadAll(io.LimitReader(in, daemon.MaxSecretSize+1))
	if err != nil {
		return fmt.Errorf("read the value: %w", err)
	}
	if len(value) > daemon.MaxSecretSize {
		return usagef("the value is larger than %d bytes, the limit for a secret", daemon.MaxSecretSize)
	}
	var e api.Entity
	if err := call(c, api.MSecretPut, api.SecretPutReq{Project: a[0], Name: a[1], Value: value, Replace: replace}, &e); err != nil {
		return err
	}
	return printEntity(c, e)
}

func secretRef(a []string) string { return "resource:" + a[0] + "/secrets/" + a[1] }

func secretList(c *cli.Context) error {
	a, err := args(c, "ORG/C/P")
	if err != nil {
		return err
	}
	var out []api.Entity
	if err := call(c, api.MList, api.ListReq{Kind: "resource", Type: "secret", Parent: a[0]}, &out); err != nil {
		return err
	}
	return printEntities(c, out)
}

func secretShow(c *cli.Context) error {
	a, err := args(c, "ORG/C/P", "NAME")
	if err != nil {
		return err
	}
	var e api.Entity
	if err := call(c, api.MShow, api.RefReq{Ref: secretRef(a)}, &e); err != nil {
		return err
	}
	return printEntity(c, e)
}

func secretDelete(c *cli.Context) error {
	a, err := args(c, "ORG/C/P", "NAME")
	if err != nil {
		return err
	}
	if err := call(c, api.MDelete, api.RefReq{Ref: secretRef(a)}, nil); err != nil {
		return err
	}
	return output(c, map[string]string{"deleted": secretRef(a)}, func(w io.Writer) { fmt.Fprintf(w, "deleted secret %s\n", a[1]) })
}
