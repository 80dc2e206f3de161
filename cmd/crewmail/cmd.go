package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"crewmail/config"
)

// The command line is a table of commands, one function each, in the shape of mox's main.go.
// A command's function declares its usage (c.params, c.help) and its flags on the cmd it is
// given, parses its arguments, and only then does its work. Run with c.gather set it stops
// once it has declared them: that is how "crewmail help" and "crewmail GROUP -h" list the
// commands, from the table itself.

// command is one line of the table.
type command struct {
	name string // the words that name it: "list create", "backup"
	fn   func(c *cmd) error
	// onDatabase: the command works on the database, which one process only may open, so it
	// runs in the server (over its control socket) while one runs, else here on the file.
	onDatabase bool
}

// commands is every command, in the order "crewmail help" lists them. It is filled in by init,
// since help, one of them, reads it.
var commands []command

func init() {
	commands = []command{
		{"serve", cmdServe, false},
		{"list create", cmdListCreate, true},
		{"list set", cmdListSet, true},
		{"list ls", cmdListLs, true},
		{"list show", cmdListShow, true},
		{"list rm", cmdListRm, true},
		{"recipients", cmdRecipients, true},
		{"member add", cmdMemberAdd, true},
		{"member rm", cmdMemberRm, true},
		{"member ls", cmdMemberLs, true},
		{"member mode", cmdMemberMode, true},
		{"member set", cmdMemberSet, true},
		{"member password", cmdMemberPassword, true},
		{"member data", cmdMemberData, true},
		{"archive ls", cmdArchiveLs, true},
		{"post redact", cmdPostRedact, true},
		{"digest preview", cmdDigestPreview, true},
		{"digest send", cmdDigestSend, true},
		{"held ls", cmdHeldLs, true},
		{"held approve", cmdHeldApprove, true},
		{"held reject", cmdHeldReject, true},
		{"ban", cmdBan, true},
		{"unban", cmdUnban, true},
		{"pending ls", cmdPendingLs, true},
		{"pending approve", cmdPendingApprove, true},
		{"pending decline", cmdPendingDecline, true},
		{"export", cmdExport, true},
		{"import", cmdImport, true},
		{"reindex", cmdReindex, true},
		{"backup", cmdBackup, true},
		{"check-db", cmdCheckDB, true},
		{"migrate", cmdMigrate, false},
		{"queue ls", cmdQueueLs, true},
		{"queue retry", cmdQueueRetry, true},
		{"queue drop", cmdQueueDrop, true},
		{"dkim keygen", cmdDKIMKeygen, false},
		{"dkim show", cmdDKIMShow, false},
		{"check", cmdCheck, false},
		{"version", cmdVersion, false},
		{"help", cmdHelp, false},
	}
}

// cmd is one run of a command: what it declares, its arguments, and what it runs with.
type cmd struct {
	name   string        // as in the table
	params string        // what follows the name on its usage line: "LIST ADDRESS... [-welcome]"
	help   string        // what it does, shown by -h after the usage line; may be empty
	flag   *flag.FlagSet // its flags, declared by its function
	args   []string      // the command line after the name
	gather bool          // only declare params, help and flags: parse returns errGather

	stdout, stderr io.Writer

	// Commands run in the caller's process: the context (done at SIGINT or SIGTERM) and the
	// configuration file.
	ctx     context.Context
	cfgPath string
	cfg     *config.Config // loaded by config()

	// Commands on the database: open makes what they work on, asked for only once the command
	// line is known to be right. direct: no server runs, so the command runs here on the
	// database of cfg.
	open   func() (*backend, error)
	direct bool
}

func newCmd(name string, args []string, stdout, stderr io.Writer) *cmd {
	fs := flag.NewFlagSet("crewmail "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported once, by exitCode
	return &cmd{name: name, flag: fs, args: args, stdout: stdout, stderr: stderr}
}

// many is parse's most for "no limit".
const many = -1

// errGather ends a command's function in gather mode, once it has declared its usage.
var errGather = errors.New("only gathering the usage")

// errSaid: the command failed and has said why on stdout already (check's findings): exit
// status 1, and nothing more on stderr.
var errSaid = errors.New("failed; see above")

// usageError is a wrong command line: exit status 2.
type usageError string

func (e usageError) Error() string { return string(e) }

// parse parses the command's flags, wherever they stand among its positional arguments (as
// people type them), and returns the positionals: at least least, at most most (many: no
// limit).
// -h prints the usage and returns flag.ErrHelp; a wrong command line returns a usageError.
func (c *cmd) parse(least, most int) ([]string, error) {
	if c.gather {
		return nil, errGather
	}
	// The flag package calls Usage for -h and for a flag it cannot parse: both show the usage.
	c.flag.Usage = c.printUsage
	pos, err := parseInterleaved(c.flag, c.args)
	if errors.Is(err, flag.ErrHelp) {
		return nil, err
	}
	if err != nil {
		return nil, usageError(fmt.Sprintf("%s: %v", c.name, err))
	}
	if len(pos) < least || (most != many && len(pos) > most) {
		return nil, c.usageError()
	}
	return pos, nil
}

// usageError says how the command is used, as an error.
func (c *cmd) usageError() error {
	return usageError(wrapUsage("usage: crewmail "+c.name, c.params))
}

// printUsage is what -h prints: the usage line, what the command does, its flags.
func (c *cmd) printUsage() {
	fmt.Fprintln(c.stdout, wrapUsage("Usage: crewmail "+c.name, c.params))
	if c.help != "" {
		fmt.Fprintf(c.stdout, "\n%s\n", c.help)
	}
	c.flag.SetOutput(c.stdout)
	c.flag.PrintDefaults()
	c.flag.SetOutput(io.Discard)
}

// backend is what a command on the database works on: the server's own, or one made on the
// database for this command.
func (c *cmd) backend() (*backend, error) { return c.open() }

// config loads the configuration of a command run in the caller's process.
func (c *cmd) config() (*config.Config, error) {
	if c.cfg == nil {
		cfg, err := config.Load(c.cfgPath)
		if err != nil {
			return nil, err
		}
		c.cfg = cfg
	}
	return c.cfg, nil
}

// exitCode reports err on stderr as the caller of crewmail expects it and returns the exit
// status: 0 done (or -h), 1 failed, 2 wrong usage.
func exitCode(err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if errors.Is(err, errSaid) {
		return exitError
	}
	fmt.Fprintf(stderr, "crewmail: %v\n", err)
	if _, ok := errors.AsType[usageError](err); ok {
		return exitUsage
	}
	return exitError
}

// find looks up the command args name among the commands onDatabase (or the others) and
// returns it with its arguments. A group's name alone ("list") is a usage error listing its
// commands; with -h the list goes to stdout and find returns flag.ErrHelp.
func find(args []string, onDatabase bool, stdout io.Writer) (command, []string, error) {
	var group []command
	for _, c := range commands {
		if c.onDatabase != onDatabase {
			continue
		}
		if c.name == args[0] {
			return c, args[1:], nil
		}
		if len(args) > 1 && c.name == args[0]+" "+args[1] {
			return c, args[2:], nil
		}
		if strings.HasPrefix(c.name, args[0]+" ") {
			group = append(group, c)
		}
	}
	switch {
	case len(group) == 0:
		return command{}, nil, usageError(fmt.Sprintf("unknown command %q; \"crewmail help\" lists the commands", args[0]))
	case len(args) >= 2 && (args[1] == "-h" || args[1] == "-help" || args[1] == "--help"):
		fmt.Fprintf(stdout, "Usage:\n%s\n", usageLines(group))
		return command{}, nil, flag.ErrHelp
	case len(args) < 2:
		return command{}, nil, usageError(fmt.Sprintf("%s needs a subcommand:\n%s", args[0], usageLines(group)))
	}
	return command{}, nil, usageError(fmt.Sprintf("unknown command %q; \"crewmail %s -h\" lists what %s can do", args[0]+" "+args[1], args[0], args[0]))
}

// isOnDatabase reports whether word names a command on the database, or a group of them.
func isOnDatabase(word string) bool {
	for _, c := range commands {
		if c.onDatabase && (c.name == word || strings.HasPrefix(c.name, word+" ")) {
			return true
		}
	}
	return false
}

// usageLines are the usage lines of cs, as their functions declare them, one per command.
func usageLines(cs []command) string {
	var lines []string
	for _, c := range cs {
		x := newCmd(c.name, nil, io.Discard, io.Discard)
		x.gather = true
		if err := c.fn(x); !errors.Is(err, errGather) {
			panic(fmt.Sprintf("command %q does its work before parsing its arguments", c.name))
		}
		lines = append(lines, wrapUsage("  crewmail "+c.name, x.params))
	}
	return strings.Join(lines, "\n")
}

// usageWidth is where usage lines wrap, before an option in brackets.
const usageWidth = 100

// wrapUsage is head followed by params, wrapped before a bracketed option where the line
// would pass usageWidth; the continuation lines start under the first parameter.
func wrapUsage(head, params string) string {
	if params == "" {
		return head
	}
	var b strings.Builder
	b.WriteString(head)
	indent := strings.Repeat(" ", len(head)+1)
	col := len(head)
	parts := strings.Split(params, " [")
	for i, part := range parts {
		if i > 0 {
			part = "[" + part
		}
		if i > 0 && col+1+len(part) > usageWidth {
			b.WriteString("\n" + indent)
			col = len(indent)
		} else {
			b.WriteString(" ")
			col++
		}
		b.WriteString(part)
		col += len(part)
	}
	return b.String()
}
