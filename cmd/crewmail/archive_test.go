package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"crewmail/internal/mailtest"
	"crewmail/store"
)

// TestExportImportBackupWhileServing: the archive goes out as mboxrd and into another list
// through the running server, nothing is sent by the import, and a backup taken while serving
// opens as a database holding everything.
func TestExportImportBackupWhileServing(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink, "alice@example.test")
	ts.mustCLI(t, "list", "create", "copy@"+testDomain, "-post", "anyone")
	ts.mustCLI(t, "member", "add", "copy@"+testDomain, "bob@example.test")
	for i, subject := range []string{"From the garden", "Re: From the garden"} {
		body := "From the shed we see the beans.\r\n>From a quote\r\n"
		msg := post("alice@example.test", subject, []string{"g1@example.test", "g2@example.test"}[i], body)
		if i == 1 {
			msg = append([]byte("In-Reply-To: <g1@example.test>\r\n"), msg...)
		}
		if err := send(t, ts.SMTPAddr, "alice@example.test", []string{crew}, msg); err != nil {
			t.Fatal(err)
		}
	}
	sink.Wait(t, 2)
	settle(t, ts)

	mbox := ts.mustCLI(t, "export", crew)
	if strings.Count(mbox, "\nFrom alice@example.test ")+strings.Count(mbox[:5], "From ") != 2 || !strings.Contains(mbox, "\n>From the shed") || !strings.Contains(mbox, "\n>>From a quote") {
		t.Fatalf("export:\n%s", mbox)
	}
	if got := ts.mustCLI(t, "export", crew, "-since", "2999-01-01"); got != "" {
		t.Errorf("export -since the future: %q", got)
	}
	file := filepath.Join(t.TempDir(), "crew.mbox")
	if err := os.WriteFile(file, []byte(mbox), 0o600); err != nil {
		t.Fatal(err)
	}
	// A relative path works too: the CLI makes it absolute for the server.
	wd, _ := os.Getwd()
	rel, err := filepath.Rel(wd, file)
	if err != nil {
		rel = file
	}
	if out := ts.mustCLI(t, "import", "copy@"+testDomain, rel); !strings.Contains(out, "imported 2 messages into copy@"+testDomain+"; 0 were there already") {
		t.Fatalf("import: %s", out)
	}
	if out := ts.mustCLI(t, "import", "copy@"+testDomain, file); !strings.Contains(out, "imported 0 messages") || !strings.Contains(out, "2 were there already") {
		t.Errorf("second import: %s", out)
	}
	if again := ts.mustCLI(t, "export", "copy@"+testDomain); again != mbox {
		t.Errorf("the imported list exports differently:\n%s", again)
	}
	if arch := ts.mustCLI(t, "archive", "ls", "copy@"+testDomain, "-json"); strings.Count(arch, `"thread":1,`) != 2 {
		t.Errorf("imported posts not threaded:\n%s", arch)
	}
	settle(t, ts)
	if n := len(sink.Messages()); n != 2 {
		t.Errorf("the import sent mail: %d messages in all", n)
	}
	if _, errOut, code := ts.cli(t, "import", crew, filepath.Join(t.TempDir(), "missing.mbox")); code != 1 || !strings.Contains(errOut, "cannot read") {
		t.Errorf("import of a missing file: exit %d %q", code, errOut)
	}

	backup := filepath.Join(t.TempDir(), "backup.db")
	if out := ts.mustCLI(t, "backup", backup); !strings.Contains(out, "wrote a consistent copy") {
		t.Fatalf("backup: %s", out)
	}
	dir := t.TempDir()
	data, err := os.ReadFile(backup)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, store.FileName), data, 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(dir)
	if err != nil {
		t.Fatalf("the backup does not open: %v", err)
	}
	defer st.Close()
	err = st.View(func(tx store.Tx) error {
		_, raw, err := tx.Post(crew, 2)
		if err == nil && !bytes.Contains(raw, []byte("Re: From the garden")) {
			t.Errorf("backup holds another post 2:\n%s", raw)
		}
		return err
	})
	if err != nil {
		t.Errorf("backup: %v", err)
	}
}
