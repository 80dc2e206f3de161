package main

import (
	"bytes"
	"flag"
	"io"
	"os"
	"strings"
	"testing"
)

// TestEveryCommandExplainsItself: "crewmail COMMAND -h" prints the command's usage line and
// every flag it declares, and exits 0; a flag it does not know is a usage error (exit 2). No
// server runs, so the commands on the database parse their command line here, before the
// database is opened.
func TestEveryCommandExplainsItself(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, t.TempDir(), "127.0.0.1:1", "")
	for _, c := range commands {
		args := strings.Fields(c.name)
		out, errOut, code := runCLI(t, cfg, append(args, "-h")...)
		if code != exitOK || !strings.HasPrefix(out, "Usage: crewmail "+c.name) {
			t.Errorf("crewmail %s -h: exit %d, stdout %q, stderr %q", c.name, code, out, errOut)
		}
		x := newCmd(c.name, nil, io.Discard, io.Discard)
		x.gather = true
		_ = c.fn(x)
		x.flag.VisitAll(func(f *flag.Flag) {
			if !strings.Contains(out, "  -"+f.Name) {
				t.Errorf("crewmail %s -h does not explain -%s:\n%s", c.name, f.Name, out)
			}
		})
		_, errOut, code = runCLI(t, cfg, append(args, "-no-such-flag")...)
		if code != exitUsage || !strings.Contains(errOut, "crewmail: "+c.name+": flag provided but not defined: -no-such-flag") {
			t.Errorf("crewmail %s -no-such-flag: exit %d, stderr %q", c.name, code, errOut)
		}
	}
}

// TestHelpListsTheCommandsOfTheREADME: "crewmail help" lists every command of the table, and
// the README's command line section is that list.
func TestHelpListsTheCommandsOfTheREADME(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if code := run(t.Context(), []string{"help"}, &out, io.Discard); code != exitOK {
		t.Fatalf("crewmail help: exit %d", code)
	}
	_, list, _ := strings.Cut(out.String(), "Usage:\n")
	list, _, _ = strings.Cut(list, "\n\n")
	for _, c := range commands {
		if !strings.Contains(list, "  crewmail "+c.name) {
			t.Errorf("crewmail help does not list %s:\n%s", c.name, list)
		}
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(readme), "## Command line\n\n```\n")
	section, _, _ = strings.Cut(section, "```")
	var want strings.Builder
	for line := range strings.SplitSeq(list, "\n") {
		want.WriteString(strings.TrimPrefix(line, "  ") + "\n")
	}
	if section != want.String() {
		t.Errorf("the README's command line section:\n%s\nis not what crewmail help lists:\n%s", section, want.String())
	}
}
