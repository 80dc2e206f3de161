package main

import (
	bo "encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"crewmail/internal/mailtest"
	"crewmail/store"
)

// TestDamagedDatabaseSaysSoInOneSentence: garbage over the database's branch pages made
// `crewmail serve`, and admin commands on the stopped server's database, panic. The database
// opens without reading every page (a million posts must not cost a second at each start), so
// the damage shows where it is read: a command that reads it fails in one sentence naming
// check-db, with exit status 1, whether the server runs or not, and the server goes on serving
// what it can read; `crewmail check-db` says what is wrong (exit 1); on a sound database it
// says ok, whether the server runs or not.
func TestDamagedDatabaseSaysSoInOneSentence(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink)
	var mbox strings.Builder
	for i := range 2000 {
		fmt.Fprintf(&mbox, "From a@example.test Wed Nov 25 10:00:00 2026\nFrom: a@example.test\nSubject: post %d\nMessage-ID: <p%d@example.test>\n\nbody %d\n\n", i, i, i)
	}
	file := filepath.Join(t.TempDir(), "many.mbox")
	if err := os.WriteFile(file, []byte(mbox.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	ts.mustCLI(t, "import", crew, file)
	path := ts.st.(store.Maintenance).Path()
	if out := ts.mustCLI(t, "check-db"); out != path+": ok\n" {
		t.Errorf("check-db while serving: %q", out)
	}
	ts.stop()
	if out := ts.mustCLI(t, "check-db"); out != path+": ok\n" {
		t.Errorf("check-db on the stopped server's database: %q", out)
	}
	if n := damageBranchPages(t, path); n == 0 {
		t.Fatal("the database has no branch page to damage")
	}

	oneSentence := func(what, errOut string, code int) {
		t.Helper()
		msg := strings.TrimSpace(errOut)
		if code != exitError || !strings.HasPrefix(msg, "crewmail: the database "+path+" is damaged (") || !strings.Contains(msg, "crewmail check-db") || strings.Contains(msg, "\n") {
			t.Errorf("%s on the damaged database: exit %d, %q", what, code, errOut)
		}
	}
	_, errOut, code := ts.cli(t, "archive", "ls", crew)
	oneSentence("archive ls", errOut, code)

	ts = startTestServer(t, ts.cfgPath)
	_, errOut, code = ts.cli(t, "archive", "ls", crew)
	oneSentence("archive ls while serving", errOut, code)
	if out := ts.mustCLI(t, "list", "ls"); !strings.Contains(out, crew) {
		t.Errorf("list ls while serving the damaged database: %q", out)
	}
	if stdout, _, code := ts.cli(t, "check-db"); code != exitError || !strings.HasPrefix(stdout, path+": ") || strings.Contains(stdout, ": ok") {
		t.Errorf("check-db while serving the damaged database: exit %d\n%s", code, stdout)
	}
	ts.stop()

	stdout, errOut, code := ts.cli(t, "check-db")
	if code != exitError || !strings.HasPrefix(stdout, path+": ") || strings.Contains(stdout, ": ok") || !strings.Contains(errOut, "restore it from a backup") {
		t.Errorf("check-db on the damaged database: exit %d\n%s%s", code, stdout, errOut)
	}
	if out, _, code := ts.cli(t, "check-db", "-h"); code != exitOK || !strings.Contains(out, "Usage: crewmail check-db") {
		t.Errorf("check-db -h: exit %d %q", code, out)
	}
	if _, _, code := ts.cli(t, "check-db", "extra"); code != exitUsage {
		t.Errorf("check-db with an argument: exit %d", code)
	}
}

// damageBranchPages writes garbage over every branch page of the bbolt file at path (found
// through its page headers: id, then flags 0x01) and returns how many it damaged.
func damageBranchPages(t *testing.T, path string) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// The page size is in the meta page: after the 16-byte page header, magic and version.
	pageSize := int(bo.LittleEndian.Uint32(data[16+8:]))
	r := rand.New(rand.NewPCG(1, 2))
	n := 0
	for id := 2; (id+1)*pageSize <= len(data); id++ {
		page := data[id*pageSize : (id+1)*pageSize]
		if bo.LittleEndian.Uint64(page) == uint64(id) && bo.LittleEndian.Uint16(page[8:]) == 0x01 {
			for i := range page {
				page[i] = byte(r.Uint32())
			}
			n++
		}
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return n
}
