package cmd

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/sphere-sandbox/sphere/daemon/api"
)

// noun describes one kind of entity the CLI manages with the same five verbs.
type noun struct {
	kind       string // org, community, project, cloud, folder, service-account
	path       string // the shape of its path, for usage lines
	parentPath string // the shape of its parent's path, for `list`
	// settings are the flags `set` (and `create`) accept, mapped to setting keys.
	settings map[string]string
}

func (n noun) command(usage string) *cli.Command {
	return &cli.Command{
		Name:  n.kind,
		Usage: usage,
		Subcommands: []*cli.Command{
			{Name: "create", Usage: "create " + n.path, ArgsUsage: n.path, Flags: n.flags(), Action: n.create},
			{Name: "list", Usage: "list what you may see" + n.listScope(), ArgsUsage: n.listArgs(), Action: n.list},
			{Name: "show", Usage: "show one, with its settings and members", ArgsUsage: n.path, Action: n.show},
			{Name: "set", Usage: "change its description or settings", ArgsUsage: n.path, Flags: n.flags(), Action: n.set},
			{Name: "delete", Usage: "delete it", ArgsUsage: n.path, Action: n.delete},
		},
	}
}

func (n noun) listScope() string {
	if n.parentPath == "" {
		return ""
	}
	return ", all or those in " + n.parentPath
}

func (n noun) listArgs() string {
	if n.parentPath == "" {
		return ""
	}
	return "[" + n.parentPath + "]"
}

func (n noun) flags() []cli.Flag {
	flags := []cli.Flag{descriptionFlag}
	for _, name := range sortedKeys(n.settings) {
		flags = append(flags, &cli.StringFlag{Name: name, Usage: "set " + n.settings[name] + " (\"\" unsets it)"})
	}
	return flags
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (n noun) ref(path string) string { return n.kind + ":" + path }

func (n noun) create(c *cli.Context) error {
	a, err := args(c, n.path)
	if err != nil {
		return err
	}
	req := api.CreateReq{Ref: n.ref(a[0]), Description: c.String("description"), Settings: map[string]string{}}
	for flag, key := range n.settings {
		if c.IsSet(flag) {
			req.Settings[key] = c.String(flag)
		}
	}
	var e api.Entity
	if err := call(c, api.MCreate, req, &e); err != nil {
		return err
	}
	return printEntity(c, e)
}

func (n noun) list(c *cli.Context) error {
	if c.NArg() > 1 || n.parentPath == "" && c.NArg() > 0 {
		return usagef("%s takes %s", c.Command.FullName(), orDash(n.listArgs()))
	}
	var out []api.Entity
	if err := call(c, api.MList, api.ListReq{Kind: n.kind, Parent: c.Args().First()}, &out); err != nil {
		return err
	}
	return printEntities(c, out)
}

func (n noun) show(c *cli.Context) error {
	a, err := args(c, n.path)
	if err != nil {
		return err
	}
	var e api.Entity
	if err := call(c, api.MShow, api.RefReq{Ref: n.ref(a[0])}, &e); err != nil {
		return err
	}
	return printEntity(c, e)
}

func (n noun) set(c *cli.Context) error {
	a, err := args(c, n.path)
	if err != nil {
		return err
	}
	req := api.SetReq{Ref: n.ref(a[0]), Settings: map[string]string{}}
	if c.IsSet("description") {
		d := c.String("description")
		req.Description = &d
	}
	for flag, key := range n.settings {
		switch {
		case !c.IsSet(flag):
		case c.String(flag) == "":
			req.Unset = append(req.Unset, key)
		default:
			req.Settings[key] = c.String(flag)
		}
	}
	var e api.Entity
	if err := call(c, api.MSet, req, &e); err != nil {
		return err
	}
	return printEntity(c, e)
}

func (n noun) delete(c *cli.Context) error {
	a, err := args(c, n.path)
	if err != nil {
		return err
	}
	if err := call(c, api.MDelete, api.RefReq{Ref: n.ref(a[0])}, nil); err != nil {
		return err
	}
	return output(c, map[string]string{"deleted": n.ref(a[0])}, func(w io.Writer) {
		fmt.Fprintf(w, "deleted %s\n", n.ref(a[0]))
	})
}

func printEntities(c *cli.Context, es []api.Entity) error {
	return output(c, es, func(w io.Writer) {
		fmt.Fprintln(w, "PATH\tKIND\tCREATOR\tCREATED (UTC)\tDESCRIPTION")
		for _, e := range es {
			path := e.Path
			if e.Owner != "" {
				path += " (published from " + e.Owner + ")"
			}
			kind := e.Kind
			if e.Type != "" {
				kind = e.Type
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", path, kind, e.Creator, utc(e.Created), orDash(e.Description))
		}
	})
}

func printEntity(c *cli.Context, e api.Entity) error {
	return output(c, e, func(w io.Writer) {
		kind := e.Kind
		if e.Type != "" {
			kind = e.Type
		}
		fmt.Fprintf(w, "%s\t%s\n", kind+":", e.Path)
		fmt.Fprintf(w, "id:\t%d\n", e.ID)
		fmt.Fprintf(w, "description:\t%s\n", orDash(e.Description))
		fmt.Fprintf(w, "creator:\t%s\n", e.Creator)
		fmt.Fprintf(w, "created:\t%s\n", utc(e.Created))
		fmt.Fprintf(w, "modified:\t%s\n", utc(e.Modified))
		if e.Type == "secret" {
			fmt.Fprintf(w, "size:\t%d bytes (value not shown)\n", e.Size)
		}
		for _, k := range sortedKeys(e.Settings) {
			fmt.Fprintf(w, "%s:\t%s\n", k, e.Settings[k])
		}
		if len(e.PublishedTo) > 0 {
			fmt.Fprintf(w, "published to:\t%s\n", strings.Join(e.PublishedTo, ", "))
		}
		if len(e.Members) > 0 {
			fmt.Fprintln(w, "members:")
			printBindingRows(w, e.Members)
		}
	})
}

func printBindingRows(w io.Writer, bs []api.Binding) {
	fmt.Fprintln(w, "  PRINCIPAL\tROLE\tON")
	for _, b := range bs {
		fmt.Fprintf(w, "  %s\t%s\t%s\n", b.Principal, b.Role, b.On)
	}
}

func cmdOrg() *cli.Command {
	return noun{kind: "org", path: "ORG"}.command("organizations: everything belongs to exactly one")
}

func cmdCommunity() *cli.Command {
	return noun{kind: "community", path: "ORG/COMMUNITY", parentPath: "ORG",
		settings: map[string]string{"billing-account": "billing-account"}}.command("communities: groups of projects, the scope of sharing")
}

func cmdProject() *cli.Command {
	return noun{kind: "project", path: "ORG/COMMUNITY/PROJECT", parentPath: "ORG/COMMUNITY"}.command("projects: where people work; mounted as directories")
}

func cmdCloud() *cli.Command {
	return noun{kind: "cloud", path: "ORG/CLOUD", parentPath: "ORG"}.command("clouds: hold folders; their owners manage access")
}

func cmdFolder() *cli.Command {
	return noun{kind: "folder", path: "ORG/CLOUD/FOLDER", parentPath: "ORG/CLOUD"}.command("folders of a cloud: hold resources such as service accounts")
}

func cmdServiceAccount() *cli.Command {
	return noun{kind: "service-account", path: "ORG/CLOUD/FOLDER/NAME", parentPath: "ORG/CLOUD/FOLDER"}.command("service accounts: principals that live in a folder")
}
