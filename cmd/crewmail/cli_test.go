package main

import (
	"strings"
	"testing"

	"crewmail/internal/mailtest"
)

// TestAdminCommands runs the admin CLI against a running server (over the control socket),
// then against the stopped server's database, as an operator would.
func TestAdminCommands(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := startTestServer(t, testConfig(t, t.TempDir(), sink.Addr, ""))

	steps := []struct {
		args []string
		code int
		out  string // expected in stdout (code 0) or stderr
	}{
		{[]string{"list", "create", "Crew@Lists.Example.Test", "-name", "Garden crew", "-owner", "olga@example.test", "-post", "anyone"}, 0, "created crew@lists.example.test"},
		{[]string{"list", "create", crew}, 1, "already exists"},
		{[]string{"list", "create", "not-an-address"}, 1, "not an email address"},
		{[]string{"list", "create", "x@" + testDomain, "-join", "whenever"}, 1, "join policy must be one of open, approve, invite"},
		{[]string{"list", "create", "crew+x@" + testDomain}, 1, "separator"},
		{[]string{"list", "create"}, 2, "usage: crewmail list create"},
		{[]string{"list", "frobnicate"}, 2, "unknown command"},
		{[]string{"list"}, 2, "needs a subcommand"},
		{[]string{"list", "ls"}, 0, "crew@lists.example.test  Garden crew  approve  anyone  0"},
		// Flags after positionals, as people type them.
		{[]string{"member", "add", crew, "Alice@Example.Test", "bob@example.test", "-mode", "daily"}, 0, "added bob@example.test to crew@lists.example.test (daily)"},
		{[]string{"member", "add", crew, "alice@example.test"}, 1, "alice@example.test is already a member of crew@lists.example.test"},
		{[]string{"member", "add", crew, "carol@example.test", "-mode", "hourly"}, 1, "mode must be one of each, daily, weekly, nomail"},
		{[]string{"member", "add", "ghost@" + testDomain, "carol@example.test"}, 1, "there is no list ghost@lists.example.test"},
		{[]string{"member", "mode", crew, "alice@example.test", "weekly"}, 0, "alice@example.test now receives crew@lists.example.test in weekly mode"},
		{[]string{"member", "mode", crew, "zed@example.test", "weekly"}, 1, "zed@example.test is not a member of crew@lists.example.test"},
		{[]string{"member", "ls", crew}, 0, "alice@example.test  weekly"},
		{[]string{"member", "rm", crew, "bob@example.test"}, 0, "removed bob@example.test"},
		{[]string{"member", "rm", crew, "bob@example.test"}, 1, "bob@example.test is not a member"},
		{[]string{"list", "set", crew, "-subject-prefix", "[garden]", "-archive-url", "https://example.test/garden"}, 0, "updated crew@lists.example.test"},
		{[]string{"list", "show", crew}, 0, "subject prefix:  [garden]"},
		{[]string{"list", "set", crew, "-owner", "pat@example.test"}, 0, "updated crew@lists.example.test"},
		{[]string{"list", "show", crew}, 0, "olga@example.test, pat@example.test"},
		{[]string{"list", "set", crew, "-remove-owner", "Olga@example.test"}, 0, "updated crew@lists.example.test"},
		{[]string{"list", "show", crew}, 0, "owners:          pat@example.test\n"},
		{[]string{"list", "set", crew, "-remove-owner", "olga@example.test"}, 1, "olga@example.test is not an owner of crew@lists.example.test"},
		{[]string{"archive", "ls", crew}, 0, "SEQ"},
		{[]string{"archive", "ls", "ghost@" + testDomain}, 1, "there is no list ghost@lists.example.test"},
		{[]string{"member", "add", "-h"}, 0, "Usage: crewmail member add LIST ADDRESS..."},
		{[]string{"list", "-h"}, 0, "crewmail list create ADDRESS"},
		{[]string{"frobnicate"}, 2, "unknown command"},
		{[]string{"export"}, 2, "usage: crewmail export LIST"},
		{[]string{"import", crew}, 2, "usage: crewmail import LIST FILE"},
		{[]string{"backup"}, 2, "usage: crewmail backup FILE"},
		{[]string{"digest"}, 2, "digest needs a subcommand"},
		{[]string{"export", "-h"}, 0, "Usage: crewmail export LIST [-since DATE]"},
		{[]string{"export", crew, "-since", "yesterday"}, 1, "-since \"yesterday\" is not a day"},
	}
	for _, s := range steps {
		out, errOut, code := ts.cli(t, s.args...)
		where := out
		if s.code != 0 {
			where = errOut
		}
		if code != s.code || !strings.Contains(where, s.out) {
			t.Errorf("crewmail %s: exit %d, stdout %q, stderr %q; want exit %d with %q", strings.Join(s.args, " "), code, out, errOut, s.code, s.out)
		}
		if strings.Count(out, "Usage:") > 1 {
			t.Errorf("crewmail %s: usage printed twice: %q", strings.Join(s.args, " "), out)
		}
		if s.code != 0 && strings.Count(strings.TrimSpace(errOut), "\n") > 0 && s.code != 2 {
			t.Errorf("crewmail %s: error is not one sentence: %q", strings.Join(s.args, " "), errOut)
		}
	}

	ts.stop()
	// Without a server the same commands open the database.
	out, errOut, code := ts.cli(t, "member", "ls", crew)
	if code != 0 || !strings.Contains(out, "alice@example.test") || strings.Contains(out, "bob@example.test") {
		t.Errorf("member ls on the stopped server's database: exit %d: %s%s", code, out, errOut)
	}
	if _, errOut, code := ts.cli(t, "list", "rm", crew); code != 0 {
		t.Errorf("list rm: %s", errOut)
	}
	if out, _, _ := ts.cli(t, "list", "ls"); strings.Contains(out, crew) {
		t.Errorf("list still there after rm: %s", out)
	}
}

func TestBadConfigStopsStartup(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := testConfig(t, dir, "127.0.0.1:1", "lisen = \"127.0.0.1:25\"")
	_, errOut, code := runCLI(t, cfg, "serve")
	if code != 1 || !strings.Contains(errOut, "unknown key smtp.lisen") || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Errorf("serve with an unknown key: exit %d, %q", code, errOut)
	}
}

func TestCheckCommand(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, t.TempDir(), "127.0.0.1:1", "")
	out, _, code := runCLI(t, cfg, "check", testDomain)
	if code != 1 || !strings.Contains(out, "OK    MX") || !strings.Contains(out, "FAIL  SPF") || !strings.Contains(out, "FAIL  DKIM") || !strings.Contains(out, "crewmail dkim keygen") {
		t.Errorf("check without a DKIM key: exit %d\n%s", code, out)
	}
	if _, errOut, code := runCLI(t, cfg, "dkim", "keygen", testDomain); code != 0 {
		t.Fatal(errOut)
	}
	out, _, _ = runCLI(t, cfg, "check", testDomain)
	if !strings.Contains(out, "publish:  crewmail._domainkey.lists.example.test. IN TXT \"v=DKIM1; k=rsa; p=") {
		t.Errorf("check after keygen does not say what to publish:\n%s", out)
	}
}
