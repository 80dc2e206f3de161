package main

import (
	bo "encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"crewmail/internal/mailtest"
	"crewmail/store"
)

// TestDamagedDatabaseRefusedInOneSentence: garbage over the database's branch pages made
// `crewmail serve`, and admin commands on the stopped server's database, panic at every start.
// Now serve refuses in one sentence with exit status 1, and `crewmail check-db` says what is
// wrong (exit 1); on a sound database it says ok, whether the server runs or not.
func TestDamagedDatabaseRefusedInOneSentence(t *testing.T) {
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

	cmd := exec.Command(binary(t), "serve", "-config", ts.cfgPath)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != exitError {
		t.Fatalf("serve on a damaged database: %v\n%s", err, out)
	}
	msg := strings.TrimSpace(string(out))
	if !strings.HasPrefix(msg, "crewmail: the database "+path+" is damaged (") || !strings.Contains(msg, "crewmail check-db") || strings.Contains(msg, "\n") {
		t.Errorf("serve on a damaged database says:\n%s", out)
	}
	if _, errOut, code := ts.cli(t, "member", "ls", crew); code != exitError || !strings.Contains(errOut, "is damaged (") || strings.Count(strings.TrimSpace(errOut), "\n") > 0 {
		t.Errorf("an admin command on the damaged database: exit %d, %q", code, errOut)
	}
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
