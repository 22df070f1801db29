package cmd

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/sphere-sandbox/sphere/cluster"
	"github.com/sphere-sandbox/sphere/daemon/api"
)

// noun describes one kind of entity the CLI manages with the same five verbs.
type noun struct {
	kind       string // org, community, project, cloud, folder, service-account; or a resource type
	path       string // the shape of its path, for usage lines
	parentPath string // the shape of its parent's path, for `list`
	// settings are the flags `set` (and `create`) accept, mapped to setting keys.
	settings map[string]string
	// limits: `create` and `set` take --limit KEY=VALUE (a project's limits).
	limits bool
	// res is set for a project's resources with a descriptor, named
	// ORG/C/P NAME and found in a folder of the mount.
	res *resourceNoun
}

// resourceNoun is what a resource noun adds: its folder and its
// descriptor's flags.
type resourceNoun struct {
	folder string // images, nodes, ...
	flags  []cli.Flag
	// spec returns the descriptor fields of the flags that are set: a
	// create's whole descriptor, a set's changes.
	spec func(c *cli.Context) (map[string]any, error)
	// createFlags and created are a create's own flags, and what it does
	// once the resource exists (a model uploads its files).
	createFlags []cli.Flag
	created     func(c *cli.Context, ref string) error
}

func (n noun) command(usage string) *cli.Command {
	return &cli.Command{
		Name:  n.kind,
		Usage: usage,
		Subcommands: []*cli.Command{
			{Name: "create", Usage: "create " + n.path, ArgsUsage: n.path, Flags: n.flags(true), Action: n.create},
			{Name: "list", Usage: "list what you may see" + n.listScope(), ArgsUsage: n.listArgs(), Action: n.list},
			{Name: "show", Usage: "show one, with its settings and members", ArgsUsage: n.path, Action: n.show},
			{Name: "set", Usage: "change its description or settings", ArgsUsage: n.path, Flags: n.flags(false), Action: n.set},
			{Name: "delete", Usage: "delete it", ArgsUsage: n.path, Action: n.delete},
		},
	}
}

func (n noun) listScope() string {
	switch {
	case n.res != nil:
		return " in " + n.parentPath + ", its own and those published to its community"
	case n.parentPath == "":
		return ""
	}
	return ", all or those in " + n.parentPath
}

func (n noun) listArgs() string {
	if n.parentPath == "" || n.res != nil {
		return n.parentPath
	}
	return "[" + n.parentPath + "]"
}

func (n noun) flags(create bool) []cli.Flag {
	flags := []cli.Flag{descriptionFlag}
	for _, name := range sortedKeys(n.settings) {
		flags = append(flags, &cli.StringFlag{Name: name, Usage: "set " + n.settings[name] + " (\"\" unsets it)"})
	}
	if n.limits {
		flags = append(flags, &cli.StringSliceFlag{Name: "limit", Usage: "set a limit, KEY=VALUE (KEY=\"\" unsets it); KEY is one of " +
			strings.Join(cluster.LimitKeys, ", ") + "; " + cluster.LimitStorage + " takes a size (10G)"})
	}
	if n.res != nil {
		flags = append(flags, n.res.flags...)
		if create {
			flags = append(flags, n.res.createFlags...)
		}
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

// ref reads the command's arguments as a reference to one of the noun's.
func (n noun) ref(c *cli.Context) (string, error) {
	if n.res == nil {
		a, err := args(c, n.path)
		if err != nil {
			return "", err
		}
		return n.kind + ":" + a[0], nil
	}
	a, err := args(c, n.parentPath, "NAME")
	if err != nil {
		return "", err
	}
	return "resource:" + a[0] + "/" + n.res.folder + "/" + a[1], nil
}

// changes reads the settings and the descriptor fields the flags give;
// unset lists the settings given as "".
func (n noun) changes(c *cli.Context) (settings map[string]string, unset []string, spec json.RawMessage, err error) {
	settings = map[string]string{}
	for flag, key := range n.settings {
		switch {
		case !c.IsSet(flag):
		case c.String(flag) == "":
			unset = append(unset, key)
		default:
			settings[key] = c.String(flag)
		}
	}
	for _, kv := range c.StringSlice("limit") {
		key, value, err := parseLimit(kv)
		switch {
		case err != nil:
			return nil, nil, nil, err
		case value == "":
			unset = append(unset, cluster.LimitPrefix+key)
		default:
			settings[cluster.LimitPrefix+key] = value
		}
	}
	if n.res != nil {
		fields, err := n.res.spec(c)
		if err != nil {
			return nil, nil, nil, err
		}
		if len(fields) > 0 {
			if spec, err = json.Marshal(fields); err != nil {
				return nil, nil, nil, err
			}
		}
	}
	return settings, unset, spec, nil
}

// parseLimit reads KEY=VALUE: a count, or a size for the storage limit;
// an empty VALUE unsets the limit.
func parseLimit(kv string) (key, value string, err error) {
	key, value, ok := strings.Cut(kv, "=")
	if !ok || !slices.Contains(cluster.LimitKeys, key) {
		return "", "", usagef("--limit %q: KEY=VALUE, KEY one of %s", kv, strings.Join(cluster.LimitKeys, ", "))
	}
	if value == "" {
		return key, "", nil
	}
	if key == cluster.LimitStorage {
		n, err := parseSize(value)
		if err != nil {
			return "", "", usagef("--limit %s: %v", key, err)
		}
		return key, strconv.FormatInt(n, 10), nil
	}
	n, err := strconv.ParseUint(value, 10, 62)
	if err != nil {
		return "", "", usagef("--limit %s: %q is not a count (0 or more)", key, value)
	}
	return key, strconv.FormatUint(n, 10), nil
}

func (n noun) create(c *cli.Context) error {
	ref, err := n.ref(c)
	if err != nil {
		return err
	}
	settings, _, spec, err := n.changes(c)
	if err != nil {
		return err
	}
	req := api.CreateReq{Ref: ref, Description: c.String("description"), Settings: settings, Spec: spec}
	var e api.Entity
	if err := call(c, api.MCreate, req, &e); err != nil {
		return err
	}
	if n.res != nil && n.res.created != nil {
		if err := n.res.created(c, ref); err != nil {
			return err
		}
		if err := call(c, api.MShow, api.RefReq{Ref: ref}, &e); err != nil {
			return err
		}
	}
	return printEntity(c, e)
}

func (n noun) list(c *cli.Context) error {
	if n.res != nil {
		if _, err := args(c, n.parentPath); err != nil {
			return err
		}
	} else if c.NArg() > 1 || n.parentPath == "" && c.NArg() > 0 {
		return usagef("%s takes %s", c.Command.FullName(), orDash(n.listArgs()))
	}
	req := api.ListReq{Kind: n.kind, Parent: c.Args().First()}
	if n.res != nil {
		req.Kind, req.Type = "resource", n.kind
	}
	var out []api.Entity
	if err := call(c, api.MList, req, &out); err != nil {
		return err
	}
	return printEntities(c, out)
}

func (n noun) show(c *cli.Context) error {
	ref, err := n.ref(c)
	if err != nil {
		return err
	}
	var e api.Entity
	if err := call(c, api.MShow, api.RefReq{Ref: ref}, &e); err != nil {
		return err
	}
	return printEntity(c, e)
}

func (n noun) set(c *cli.Context) error {
	ref, err := n.ref(c)
	if err != nil {
		return err
	}
	req := setReq(c, ref)
	if req.Settings, req.Unset, req.Spec, err = n.changes(c); err != nil {
		return err
	}
	var e api.Entity
	if err := call(c, api.MSet, req, &e); err != nil {
		return err
	}
	return printEntity(c, e)
}

// setReq changes ref's --description, if given; callers add the rest.
func setReq(c *cli.Context, ref string) api.SetReq {
	req := api.SetReq{Ref: ref}
	if c.IsSet("description") {
		d := c.String("description")
		req.Description = &d
	}
	return req
}

func (n noun) delete(c *cli.Context) error {
	ref, err := n.ref(c)
	if err != nil {
		return err
	}
	if err := call(c, api.MDelete, api.RefReq{Ref: ref}, nil); err != nil {
		return err
	}
	return output(c, map[string]string{"deleted": ref}, func(w io.Writer) {
		fmt.Fprintf(w, "deleted %s\n", ref)
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
		if cluster.HoldsFiles(e.Type) {
			fmt.Fprintf(w, "files:\t%d, %s\n", e.Files, humanBytes(e.Size))
		}
		printSpec(w, e.Spec)
		if len(e.PublishedTo) > 0 {
			fmt.Fprintf(w, "published to:\t%s\n", strings.Join(e.PublishedTo, ", "))
		}
		if len(e.Limits) > 0 {
			fmt.Fprintln(w, "limits:")
			fmt.Fprintln(w, "  LIMIT\tUSED\tMAX")
			for _, l := range e.Limits {
				used, limit := strconv.FormatInt(l.Used, 10), "-"
				if l.Limit != nil {
					limit = strconv.FormatInt(*l.Limit, 10)
				}
				if l.Name == cluster.LimitStorage {
					used, limit = humanBytes(l.Used), limitText(limit)
				}
				fmt.Fprintf(w, "  %s\t%s\t%s\n", l.Name, used, limit)
			}
		}
		if len(e.Members) > 0 {
			fmt.Fprintln(w, "members:")
			printBindingRows(w, e.Members)
		}
	})
}

// printSpec prints a descriptor's fields, one a line; lists and objects
// as compact JSON, a Dockerfile's text as it is, indented.
func printSpec(w io.Writer, spec json.RawMessage) {
	var fields map[string]json.RawMessage
	if json.Unmarshal(spec, &fields) != nil {
		return
	}
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		v := string(fields[k])
		var s string
		if json.Unmarshal(fields[k], &s) == nil {
			v = strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n\t  ")
		}
		fmt.Fprintf(w, "%s:\t%s\n", strings.ReplaceAll(k, "_", "-"), v)
	}
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
	return noun{kind: "project", path: "ORG/COMMUNITY/PROJECT", parentPath: "ORG/COMMUNITY", limits: true}.command("projects: where people work; mounted as directories; show reports use against limits")
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
