package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"crewmail/internal/mailtest"
)

// TestImportTwiceKeepsOneCopyOfMessagesWithoutMessageID: `crewmail import` run a second time
// with the same mbox (as after a killed run) adds nothing, messages without a Message-ID
// included, whether the server runs or not.
func TestImportTwiceKeepsOneCopyOfMessagesWithoutMessageID(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink)
	mbox := "From a@example.test Wed Nov 25 10:00:00 2026\nFrom: a@example.test\nSubject: no id one\n\nfirst\n\n" +
		"From b@example.test Wed Nov 25 10:01:00 2026\nFrom: b@example.test\nSubject: no id two\n\nsecond\n"
	file := filepath.Join(t.TempDir(), "old.mbox")
	if err := os.WriteFile(file, []byte(mbox), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := ts.mustCLI(t, "import", crew, file); !strings.Contains(out, "imported 2 messages") {
		t.Fatalf("import: %s", out)
	}
	if out := ts.mustCLI(t, "import", crew, file); !strings.Contains(out, "imported 0 messages") || !strings.Contains(out, "2 were there already") {
		t.Errorf("second import through the server: %s", out)
	}
	ts.stop()
	if out := ts.mustCLI(t, "import", crew, file); !strings.Contains(out, "imported 0 messages") {
		t.Errorf("third import on the stopped server's database: %s", out)
	}
	if arch := ts.mustCLI(t, "archive", "ls", crew, "-json"); strings.Count(arch, "\n") != 2 {
		t.Errorf("the archive after three imports of 2 messages:\n%s", arch)
	}
}
