package cmd

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sort"

	"github.com/urfave/cli/v2"

	"github.com/sphere-sandbox/sphere/daemon/api"
)

func cmdExec() *cli.Command {
	return &cli.Command{
		Name:      "exec",
		Usage:     "run a command with the project's secrets you may read as environment variables",
		ArgsUsage: "ORG/C/P -- CMD [ARGS...]",
		Action:    execAction,
	}
}

func execAction(c *cli.Context) error {
	if c.NArg() < 2 {
		return usagef("exec takes ORG/C/P -- CMD [ARGS...]")
	}
	argv := c.Args().Slice()
	project, argv := argv[0], argv[1:]
	if argv[0] == "--" {
		argv = argv[1:]
	}
	if len(argv) == 0 {
		return usagef("exec: no command after --")
	}
	var env api.SecretEnv
	if err := call(c, api.MSecretEnv, api.ProjectReq{Project: project}, &env); err != nil {
		return err
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return usagef("exec: %v", err)
	}
	cmd := exec.Command(path, argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = os.Environ()
	names := make([]string, 0, len(env.Env))
	for k := range env.Env {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		cmd.Env = append(cmd.Env, k+"="+env.Env[k])
	}
	err = cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return exitError{code: ee.ExitCode(), err: fmt.Errorf("%s exited with status %d", argv[0], ee.ExitCode())}
	}
	return err
}
