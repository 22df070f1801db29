package cmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/sphere-sandbox/sphere/daemon/api"
)

// defaultSocket is where the daemon listens unless told otherwise.
const defaultSocket = "/run/sphere/sphere.sock"

var errNoDaemon = errors.New("cannot reach the sphere daemon")

// globalFlags are accepted by every command.
func globalFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "socket", Value: defaultSocket, EnvVars: []string{"SPHERE_SOCKET"}, Usage: "the daemon's unix socket"},
		&cli.StringFlag{Name: "api", EnvVars: []string{"SPHERE_API"}, Usage: "a daemon's remote API address (HOST:PORT) instead of the socket"},
		&cli.StringFlag{Name: "token", EnvVars: []string{"SPHERE_TOKEN"}, Usage: "API token for --api"},
		&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "table", Usage: "table (for people) or json (for scripts)"},
		&cli.BoolFlag{Name: "consistent", EnvVars: []string{"SPHERE_CONSISTENT"}, Usage: "linearizable reads: the node catches up with the cluster's leader before it answers (default: its local state)"},
	}
}

var descriptionFlag = &cli.StringFlag{Name: "description", Aliases: []string{"d"}, Usage: "a description"}

// dial returns a client for the daemon the global flags name.
func dial(c *cli.Context) *api.Client {
	client := api.Dial(c.String("socket"))
	if addr := c.String("api"); addr != "" {
		client = api.DialTCP(addr, c.String("token"))
	}
	if c.Bool("consistent") {
		client.Consistent()
	}
	return client
}

// call sends one request to the daemon.
func call(c *cli.Context, method string, req, resp any) error {
	return callWithin(c, time.Minute, method, req, resp)
}

// callWithin is call for a request that may take longer than a minute.
func callWithin(c *cli.Context, timeout time.Duration, method string, req, resp any) error {
	ctx, cancel := context.WithTimeout(c.Context, timeout)
	defer cancel()
	err := dial(c).Call(ctx, method, req, resp)
	var ce *api.CallError
	if err != nil && !errors.As(err, &ce) {
		return fmt.Errorf("%w at %s (is `sphere server` running? set --socket or SPHERE_SOCKET): %v", errNoDaemon, c.String("socket"), errors.Unwrap(err))
	}
	return err
}

// args checks the number of positional arguments.
func args(c *cli.Context, names ...string) ([]string, error) {
	if c.NArg() != len(names) {
		return nil, usagef("%s takes %d argument(s): %s (got %d)", c.Command.FullName(), len(names), strings.Join(names, " "), c.NArg())
	}
	return c.Args().Slice(), nil
}

// output prints v as JSON, or calls table to print it for people.
func output(c *cli.Context, v any, table func(w io.Writer)) error {
	switch c.String("output") {
	case "json":
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case "table", "":
		w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		table(w)
		return w.Flush()
	default:
		return usagef("--output is table or json, not %q", c.String("output"))
	}
}

func utc(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
