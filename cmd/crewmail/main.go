// Command crewmail is the crewmail server and its admin tool: the table of commands (cmd.go),
// one function each with its flags, and the wiring of the packages into a running server.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
)

// Exit statuses.
const (
	exitOK    = 0
	exitError = 1 // the command failed
	exitUsage = 2 // the command line is wrong
)

// usageIntro and usageOutro frame the list of commands that "crewmail help" prints from the
// command table.
const usageIntro = `crewmail — mailing lists and digests for small groups

Usage:
`

const usageOutro = `
Every command takes -config FILE (or CREWMAIL_CONFIG); without one, the trial setup is used:
data in ./crewmail-data, SMTP on 127.0.0.1:2525, HTTP on 127.0.0.1:8025, outbound mail into a
Maildir. Admin commands talk to a running server over its control socket, or open the database
when no server runs. "crewmail COMMAND -h" explains a command and its flags.

Exit status: 0 done, 1 failed, 2 wrong usage.
`

// usage is what "crewmail help" prints.
func usage() string { return usageIntro + usageLines(commands) + "\n" + usageOutro }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal a second one stops the process at once, whatever still runs.
	context.AfterFunc(ctx, stop)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole command line; it returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfgPath, args, err := extractConfig(args)
	if err != nil {
		fmt.Fprintf(stderr, "crewmail: %v\n", err)
		return exitUsage
	}
	if len(args) == 0 {
		fmt.Fprint(stderr, usage())
		return exitUsage
	}
	if args[0] == "-h" || args[0] == "-help" || args[0] == "--help" {
		args[0] = "help"
	}
	if isOnDatabase(args[0]) {
		return adminCommand(cfgPath, args, stdout, stderr)
	}
	cmd, rest, err := find(args, false, stdout)
	if err != nil {
		return exitCode(err, stderr)
	}
	c := newCmd(cmd.name, rest, stdout, stderr)
	c.ctx, c.cfgPath = ctx, cfgPath
	return exitCode(cmd.fn(c), stderr)
}

func cmdVersion(c *cmd) error {
	c.help = "Prints the version of crewmail."
	if _, err := c.parse(0, many); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "crewmail %s\n", version())
	return nil
}

func cmdHelp(c *cmd) error {
	c.help = "Lists the commands."
	if _, err := c.parse(0, many); err != nil {
		return err
	}
	fmt.Fprint(c.stdout, usage())
	return nil
}

// extractConfig takes -config FILE (anywhere on the line) out of args; CREWMAIL_CONFIG is the
// default.
func extractConfig(args []string) (string, []string, error) {
	path := os.Getenv("CREWMAIL_CONFIG")
	rest := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-config" || a == "--config":
			if i+1 >= len(args) {
				return "", nil, errors.New("-config needs a file name")
			}
			path = args[i+1]
			i++
		case strings.HasPrefix(a, "-config=") || strings.HasPrefix(a, "--config="):
			path = a[strings.IndexByte(a, '=')+1:]
		default:
			rest = append(rest, a)
		}
	}
	return path, rest, nil
}

// parseInterleaved parses fs's flags wherever they stand among the positional arguments, as
// people type them ("member add crew@x bob@y -mode daily"), and returns the positionals.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}
