package cmd

import (
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/sphere-sandbox/sphere/daemon/api"
)

func cmdUser() *cli.Command {
	return &cli.Command{
		Name:  "user",
		Usage: "users, known on a host by their uid",
		Subcommands: []*cli.Command{
			{Name: "add", Aliases: []string{"create"}, Usage: "register a user with their Linux uid", ArgsUsage: "NAME",
				Flags:  []cli.Flag{&cli.Int64Flag{Name: "uid", Required: true, Usage: "the user's Linux uid"}, descriptionFlag},
				Action: userAdd},
			{Name: "set", Usage: "change a user's uid (takes effect on their next operation) or description", ArgsUsage: "NAME",
				Flags:  []cli.Flag{&cli.Int64Flag{Name: "uid", Usage: "the user's new Linux uid"}, descriptionFlag},
				Action: userSet},
			{Name: "list", Usage: "list users", Action: userList},
			{Name: "show", Usage: "show a user", ArgsUsage: "NAME", Action: userShow},
			{Name: "remove", Aliases: []string{"delete"}, Usage: "remove a user and their role bindings", ArgsUsage: "NAME", Action: userRemove},
			{Name: "token", Usage: "issue a new API token for the remote API (shown once; replaces the old one)", ArgsUsage: "NAME", Action: userToken},
		},
	}
}

func userAdd(c *cli.Context) error {
	a, err := args(c, "NAME")
	if err != nil {
		return err
	}
	uid, err := uidFlag(c)
	if err != nil {
		return err
	}
	var u api.User
	if err := call(c, api.MUserAdd, api.UserAddReq{Name: a[0], UID: uid, Description: c.String("description")}, &u); err != nil {
		return err
	}
	return printUsers(c, u, []api.User{u})
}

// uidFlag is --uid, checked to be a uid a person can have.
func uidFlag(c *cli.Context) (uint32, error) {
	uid := c.Int64("uid")
	if uid < 1 || uid > 1<<32-2 {
		return 0, usagef("--uid must be a Linux uid between 1 and 4294967294 (0 is root, the bootstrap administrator), not %d", uid)
	}
	return uint32(uid), nil
}

func userSet(c *cli.Context) error {
	a, err := args(c, "NAME")
	if err != nil {
		return err
	}
	req := api.UserSetReq{Name: a[0]}
	if c.IsSet("uid") {
		uid, err := uidFlag(c)
		if err != nil {
			return err
		}
		req.UID = &uid
	}
	if c.IsSet("description") {
		d := c.String("description")
		req.Description = &d
	}
	if req.UID == nil && req.Description == nil {
		return usagef("user set changes --uid or --description; give at least one")
	}
	var u api.User
	if err := call(c, api.MUserSet, req, &u); err != nil {
		return err
	}
	return printUsers(c, u, []api.User{u})
}

func userList(c *cli.Context) error {
	if _, err := args(c); err != nil {
		return err
	}
	var us []api.User
	if err := call(c, api.MUserList, struct{}{}, &us); err != nil {
		return err
	}
	return printUsers(c, us, us)
}

func userShow(c *cli.Context) error {
	a, err := args(c, "NAME")
	if err != nil {
		return err
	}
	var u api.User
	if err := call(c, api.MUserShow, api.NameReq{Name: a[0]}, &u); err != nil {
		return err
	}
	return printUsers(c, u, []api.User{u})
}

func printUsers(c *cli.Context, v any, us []api.User) error {
	return output(c, v, func(w io.Writer) {
		fmt.Fprintln(w, "NAME\tUID\tCREATED (UTC)\tAPI TOKEN\tDESCRIPTION")
		for _, u := range us {
			token := "no"
			if u.HasToken {
				token = "yes"
			}
			fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\n", u.Name, u.UID, utc(u.Created), token, orDash(u.Description))
		}
	})
}

func userRemove(c *cli.Context) error {
	a, err := args(c, "NAME")
	if err != nil {
		return err
	}
	if err := call(c, api.MUserRemove, api.NameReq{Name: a[0]}, nil); err != nil {
		return err
	}
	return output(c, map[string]string{"removed": a[0]}, func(w io.Writer) { fmt.Fprintf(w, "removed user %s\n", a[0]) })
}

func userToken(c *cli.Context) error {
	a, err := args(c, "NAME")
	if err != nil {
		return err
	}
	var t api.TokenReply
	if err := call(c, api.MUserToken, api.NameReq{Name: a[0]}, &t); err != nil {
		return err
	}
	return output(c, t, func(w io.Writer) { fmt.Fprintln(w, t.Token) })
}
