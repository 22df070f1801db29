package cmd

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// interspersed reorders a command line so urfave/cli v2 parses it the way
// people write it. v2 stops reading flags at the first positional argument,
// so `sphere org create acme --description x` would lose the flag; and it
// reads global flags only before the command name, so `sphere org list
// --output json` would be refused. Global flags move to the front, a
// command's flags before its positional arguments; everything after "--"
// stays as it is (it belongs to the program `sphere exec` runs).
func interspersed(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	var global, path, local, positional, rest []string
	flags, cmds := app.Flags, app.Commands
	atRoot := true
	for i := 1; i < len(args); i++ {
		tok := args[i]
		switch {
		case tok == "--":
			rest = args[i:]
			i = len(args)
		case strings.HasPrefix(tok, "-") && tok != "-":
			name, _, hasValue := strings.Cut(strings.TrimLeft(tok, "-"), "=")
			f, ok := findFlag(flags, name)
			group := &local
			if atRoot {
				group = &global
			} else if !ok {
				// Not the command's own: a global flag, or an unknown one
				// the command will refuse by name.
				if g, isGlobal := findFlag(app.Flags, name); isGlobal {
					f, group = g, &global
				}
			}
			*group = append(*group, tok)
			if f != nil && !hasValue && takesValue(f) && i+1 < len(args) {
				i++
				*group = append(*group, args[i])
			}
		default:
			if c := findCommand(cmds, tok); c != nil && len(positional) == 0 {
				path = append(path, tok)
				flags, cmds, atRoot = c.Flags, c.Subcommands, false
				continue
			}
			positional = append(positional, tok)
		}
	}
	out := append([]string{args[0]}, global...)
	out = append(out, path...)
	out = append(out, local...)
	out = append(out, positional...)
	return append(out, rest...)
}

// findFlag returns the flag called name, and whether it is one of these.
func findFlag(flags []cli.Flag, name string) (cli.Flag, bool) {
	if name == "h" || name == "help" {
		return cli.HelpFlag, true
	}
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				return f, true
			}
		}
	}
	return nil, false
}

func takesValue(f cli.Flag) bool {
	if df, ok := f.(cli.DocGenerationFlag); ok {
		return df.TakesValue()
	}
	return true
}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}
