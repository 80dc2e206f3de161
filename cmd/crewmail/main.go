// Command crewmail is the crewmail server and its admin tool: subcommands, flag parsing, and the
// wiring of the packages into a running server.
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

const usage = `crewmail — mailing lists and digests for small groups

Usage:
  crewmail serve   [-config FILE] [-log-json]
  crewmail list    create ADDRESS [-name NAME] [-owner ADDR]... [-join open|approve|invite] [-post verified|members|anyone]
                                  [-moderated true|false] [-nonmembers reject|hold] [-moderator ADDR]... [-timezone ZONE]
                                  [-subject-prefix TEXT] [-archive-url URL] [-dmarc-author reply-to|cc]
  crewmail list    set ADDRESS [the flags of create]
  crewmail list    ls | show ADDRESS | rm ADDRESS
  crewmail member  add LIST ADDRESS... [-mode each|daily|weekly|nomail] [-welcome]
  crewmail member  rm LIST ADDRESS | ls LIST | mode LIST ADDRESS MODE | password LIST ADDRESS
  crewmail archive ls LIST [-json]
  crewmail digest  preview LIST [-period daily|weekly] [-member ADDR] [-html] | send [LIST] [-now]
  crewmail export  LIST [-since DATE]          (mboxrd on stdout)
  crewmail import  LIST FILE                   (an mbox into the archive; nothing is sent)
  crewmail backup  FILE                        (a consistent copy of the database, while serving)
  crewmail check-db                            (is the database sound? exit 1 when it is damaged)
  crewmail held    ls LIST | approve LIST ID | reject LIST ID [-reason TEXT]
  crewmail dkim    keygen DOMAIN [-selector S] [-algo rsa|ed25519] | show DOMAIN
  crewmail check   DOMAIN
  crewmail version

Every command takes -config FILE (or CREWMAIL_CONFIG); without one, the trial setup is used:
data in ./crewmail-data, SMTP on 127.0.0.1:2525, HTTP on 127.0.0.1:8025, outbound mail into a
Maildir. Admin commands talk to a running server over its control socket, or open the database
when no server runs. "crewmail COMMAND -h" explains a command.

Exit status: 0 done, 1 failed, 2 wrong usage.
`

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
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "serve":
		return serveCommand(ctx, cfgPath, args[1:], stdout, stderr)
	case "list", "member", "archive", "held", "digest", "export", "import", "backup":
		return adminCommand(cfgPath, args, stdout, stderr)
	case "dkim":
		return dkimCommand(cfgPath, args[1:], stdout, stderr)
	case "check":
		return checkCommand(ctx, cfgPath, args[1:], stdout, stderr)
	case "check-db":
		return checkDBCommand(cfgPath, args[1:], stdout, stderr)
	case "version":
		fmt.Fprintf(stdout, "crewmail %s\n", version())
		return exitOK
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "crewmail: unknown command %q; \"crewmail help\" lists the commands\n", args[0])
	return exitUsage
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
