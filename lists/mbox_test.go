package lists

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"crewmail/internal/mailtest"
	"crewmail/internal/mbox"
	"crewmail/store"
)

// TestExportImportRoundTrip archives every corpus message of threads/ and mime/ in one list,
// exports it as mboxrd, imports that into a new list and compares: every message byte for byte,
// the same threads, and an export of the new list identical to the first.
func TestExportImportRoundTrip(t *testing.T) {
	files := mailtest.Corpus(t, "threads", "mime")
	s := newTestService(t)
	for _, l := range []string{"a@lists.example.test", "b@lists.example.test"} {
		if _, err := s.CreateList(l, ListOptions{Post: "anyone"}); err != nil {
			t.Fatal(err)
		}
	}
	tgt, _ := s.Route("a@lists.example.test")
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		// As SMTP carries it (and smtpd insists): every line ends in CRLF.
		raw = bytes.ReplaceAll(bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))
		if _, err := s.Accept(Envelope{From: "x@example.test", Targets: []Target{tgt}}, raw); err != nil {
			if _, refused := IsRefusal(err); !refused {
				t.Fatal(err)
			}
		}
	}
	var first bytes.Buffer
	n, err := s.Export("a@lists.example.test", time.Time{}, &first, nil)
	if err != nil || n < 250 {
		t.Fatalf("export: %d posts, %v", n, err)
	}
	res, err := s.Import("b@lists.example.test", bytes.NewReader(first.Bytes()), nil)
	if err != nil || res.Imported != n || res.Skipped != 0 || len(res.Refused) != 0 {
		t.Fatalf("import: %+v, %v; exported %d", res, err, n)
	}
	// Importing again adds nothing.
	if res, err := s.Import("b@lists.example.test", bytes.NewReader(first.Bytes()), nil); err != nil || res.Imported != 0 || res.Skipped != n {
		t.Errorf("second import: %+v, %v", res, err)
	}
	a, _ := s.Archive("a@lists.example.test")
	b, _ := s.Archive("b@lists.example.test")
	for i := range a {
		if a[i].MessageID != b[i].MessageID || a[i].Thread != b[i].Thread || !a[i].Received.Equal(b[i].Received.Truncate(time.Second)) && a[i].Received.Truncate(time.Second) != b[i].Received {
			t.Errorf("post %d: %+v\nbecame %+v", i+1, a[i], b[i])
		}
		ra, rb := rawOf(t, s, "a@lists.example.test", a[i].Seq), rawOf(t, s, "b@lists.example.test", b[i].Seq)
		if !bytes.Equal(ra, rb) {
			t.Errorf("post %d (%s) differs after the round trip", i+1, a[i].MessageID)
		}
	}
	var second bytes.Buffer
	if _, err := s.Export("b@lists.example.test", time.Time{}, &second, nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first.Bytes(), second.Bytes()) {
		t.Error("exporting the imported list gives another mbox")
	}
}

func rawOf(t *testing.T, s *Service, list string, seq uint64) []byte {
	t.Helper()
	var raw []byte
	err := s.st.View(func(tx store.Tx) error {
		var err error
		_, raw, err = tx.Post(list, seq)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestMboxrdQuoting: "From " lines in a body survive export and import, at any depth of ">".
func TestMboxrdQuoting(t *testing.T) {
	s := newTestService(t)
	if _, err := s.CreateList("a@lists.example.test", ListOptions{Post: "anyone"}); err != nil {
		t.Fatal(err)
	}
	body := "From the garden:\r\n>From the shed\r\n>>From far away\r\nFromage\r\n\r\nFrom here\r\n"
	msg := "From: a@example.test\r\nSubject: quoting\r\nMessage-ID: <q@example.test>\r\n\r\n" + body
	tgt, _ := s.Route("a@lists.example.test")
	if _, err := s.Accept(Envelope{From: "a@example.test", Targets: []Target{tgt}}, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := s.Export("a@lists.example.test", time.Time{}, &out, nil); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\n>From the garden:\n", "\n>>From the shed\n", "\n>>>From far away\n", "\nFromage\n", "\n>From here\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("export lacks %q:\n%s", want, out.String())
		}
	}
	var got []byte
	if err := mbox.Read(bytes.NewReader(out.Bytes()), func(raw []byte, _ time.Time) error { got = raw; return nil }); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(got), "\r\n\r\n"+body) {
		t.Errorf("read back:\n%q", got)
	}
	if err := mbox.Read(strings.NewReader("Subject: not mbox\n\nhello\n"), func([]byte, time.Time) error { return nil }); err == nil {
		t.Error("a file that is no mbox was read")
	}
}

// TestImportTwiceWithoutMessageIDs: messages without a Message-ID get one derived from their
// bytes, so importing the same mbox again (or resuming an import that was killed) skips them
// instead of archiving them twice.
func TestImportTwiceWithoutMessageIDs(t *testing.T) {
	s := newTestService(t)
	const list = "a@lists.example.test"
	if _, err := s.CreateList(list, ListOptions{Post: "anyone"}); err != nil {
		t.Fatal(err)
	}
	mbox := "From a@example.test Wed Nov 25 10:00:00 2026\nFrom: a@example.test\nSubject: one\n\nfirst\n\n" +
		"From b@example.test Wed Nov 25 10:01:00 2026\nFrom: b@example.test\nSubject: two\n\nsecond\n\n" +
		"From c@example.test Wed Nov 25 10:02:00 2026\nFrom: c@example.test\nSubject: three\nMessage-ID: <three@example.test>\n\nthird\n"
	if res, err := s.Import(list, strings.NewReader(mbox), nil); err != nil || res.Imported != 3 {
		t.Fatalf("first import: %+v, %v", res, err)
	}
	res, err := s.Import(list, strings.NewReader(mbox), nil)
	if err != nil || res.Imported != 0 || res.Skipped != 3 {
		t.Errorf("second import: %+v, %v; want all 3 skipped", res, err)
	}
	if posts, _ := s.Archive(list); len(posts) != 3 {
		t.Errorf("the archive holds %d posts after importing 3 twice", len(posts))
	}
	// Another service (a restarted server) derives the same ids.
	other := New(s.st, s.tpl, s.cfg, s.log)
	if res, err := other.Import(list, strings.NewReader(mbox), nil); err != nil || res.Imported != 0 {
		t.Errorf("import after a restart: %+v, %v", res, err)
	}
}
