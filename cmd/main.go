// Package cmd is sphere's command line: one file per command, each with a
// cmdX() *cli.Command whose action returns an error; Main turns errors into
// messages on stderr and exit codes.
package cmd

import (
	"errors"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/sphere-sandbox/sphere/daemon/api"
)

// Exit codes, so scripts can tell failures apart without parsing messages.
const (
	exitOK       = 0
	exitFailure  = 1 // the daemon failed, or anything unclassified
	exitInvalid  = 2 // bad input: a name, a path, a flag
	exitDenied   = 3 // the policy refused
	exitNotFound = 4 // no such thing, or one the caller may not see
	exitConflict = 5 // already exists, or the state refuses the change
	exitNoDaemon = 6 // the daemon cannot be reached
)

var exitOf = map[string]int{
	"invalid": exitInvalid, "denied": exitDenied, "not_found": exitNotFound,
	"exists": exitConflict, "conflict": exitConflict, "read_only": exitConflict, "no_space": exitConflict,
}

// Main runs the command line and returns the process's exit code.
func Main(args []string) int {
	app := &cli.App{
		Name:                 "sphere",
		Usage:                "an ML platform's organization in a Raft store, projects mounted as directories",
		EnableBashCompletion: true,
		Flags:                globalFlags(),
		ExitErrHandler:       func(*cli.Context, error) {},
		Commands: []*cli.Command{
			cmdServer(), cmdWhoAmI(), cmdUser(), cmdOrg(), cmdCommunity(), cmdProject(),
			cmdCloud(), cmdFolder(), cmdServiceAccount(), cmdRole(), cmdShare(), cmdUnshare(),
			cmdAccess(), cmdSecret(), cmdDataset(), cmdS3(), cmdImage(), cmdNode(), cmdAlias(), cmdDataprocTemplate(), cmdModel(), cmdMount(), cmdUmount(), cmdExec(), cmdCluster(),
		},
	}
	err := app.Run(interspersed(app, args))
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(os.Stderr, "sphere:", err)
	return exitCode(err)
}

func exitCode(err error) int {
	var ce *api.CallError
	if errors.As(err, &ce) {
		if code, ok := exitOf[ce.Code]; ok {
			return code
		}
		return exitFailure
	}
	var ue usageError
	if errors.As(err, &ue) {
		return exitInvalid
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	if errors.Is(err, errNoDaemon) {
		return exitNoDaemon
	}
	return exitFailure
}

// usageError is a command line the CLI itself refuses.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return usageError{fmt.Sprintf(format, args...)}
}

// exitError carries a child's exit status (sphere exec) through Main.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }
