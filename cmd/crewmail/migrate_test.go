package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"crewmail/internal/mailtest"
	"crewmail/internal/searchq"
	"crewmail/store"
	"crewmail/store/postgres/pgtest"
)

// archived reads every archived message of list in the bbolt or PostgreSQL backend st, by
// sequence, and the server's secret.
func archived(t *testing.T, st store.Backend, list string) (map[uint64][]byte, []byte) {
	t.Helper()
	out := map[uint64][]byte{}
	err := st.View(func(tx store.Tx) error {
		return tx.PostsAfter(list, 0, func(p store.Post, raw []byte) error {
			out[p.Seq] = bytes.Clone(raw)
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out, bytes.Clone(st.Secret())
}

// searchQueries are searches whose answers a copy of the archive must give alike.
var searchQueries = []string{"the", `"thank you"`, "patch -the", "from:gmail", "subject:re", "has:attachment",
	"in:quotes wrote", "after:2010-01-01 before:2020-01-01 list", `-"the"`}

// searched is what st answers for searchQueries on list (every hit, written out, with a
// limit of 5 conversations and without), whether the index is complete, and the posts IMAP's
// search for "ello" would read.
func searched(t *testing.T, st store.Backend, list string) []string {
	t.Helper()
	var out []string
	err := st.View(func(tx store.Tx) error {
		out = out[:0]
		complete, err := tx.SearchIndexed(list)
		if err != nil {
			return err
		}
		out = append(out, fmt.Sprintf("complete: %v", complete))
		for _, query := range searchQueries {
			q, err := searchq.Parse(query)
			if err != nil {
				return err
			}
			for _, limit := range []int{0, 5} {
				n := 0
				if err := tx.SearchPosts(list, q, limit, func(h store.Hit) error {
					n++
					out = append(out, fmt.Sprintf("%s|%d: %d %d %s %q", query, limit, h.Seq, h.Thread, h.Date, h.Lines))
					return nil
				}); err != nil {
					return err
				}
				if n == 0 {
					t.Errorf("search %q finds nothing in the corpus: not a test", query)
				}
			}
		}
		seqs, ok, err := tx.SearchSubstrings(list, "ello")
		out = append(out, fmt.Sprintf("substrings: %v %v", seqs, ok))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sameArchive fails t unless got holds exactly the messages of want, byte for byte.
func sameArchive(t *testing.T, where string, got, want map[uint64][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d archived messages, want %d", where, len(got), len(want))
	}
	for seq, raw := range want {
		if !bytes.Equal(got[seq], raw) {
			t.Fatalf("%s: message %d differs from the original", where, seq)
		}
	}
}

var oneClickRE = regexp.MustCompile(`/u/([a-z2-7]+)>`)

// TestMigrateRoundTripOverCorpus: a bbolt server's archive (the corpus, imported) and a member
// whose one-click unsubscribe link went out in a post; crewmail migrate copies the stopped
// store into PostgreSQL, where a server runs with every message byte for byte, honours the
// link minted before and answers every search as bbolt did (the index is copied); copied back
// to a bbolt file (-from the PostgreSQL [store]), the same.
func TestMigrateRoundTripOverCorpus(t *testing.T) {
	files := mailtest.Corpus(t, "threads", "mime")
	dsn := pgtest.DSN(t)
	sink := mailtest.NewSink(t)
	a := newCrew(t, sink, "alice@example.test", "reader@example.test")
	if err := send(t, a.SMTPAddr, "alice@example.test", []string{crew}, post("alice@example.test", "Before the move", "move@example.test", "Hello.\r\n")); err != nil {
		t.Fatal(err)
	}
	var link string
	for _, m := range sink.Wait(t, 2) {
		if m.To[0] == "reader@example.test" {
			if sm := oneClickRE.FindSubmatch(m.Data); sm != nil {
				link = string(sm[1])
			}
		}
	}
	if link == "" {
		t.Fatal("the post's copy carries no one-click unsubscribe link")
	}
	var mbox bytes.Buffer
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		mbox.WriteString("From corpus@example.test Wed Nov 25 10:00:00 2026\n")
		for _, line := range strings.SplitAfter(strings.ReplaceAll(string(raw), "\r\n", "\n"), "\n") {
			if strings.HasPrefix(strings.TrimLeft(line, ">"), "From ") {
				mbox.WriteString(">") // mboxrd
			}
			mbox.WriteString(line)
		}
		mbox.WriteString("\n")
	}
	mboxFile := filepath.Join(t.TempDir(), "corpus.mbox")
	if err := os.WriteFile(mboxFile, mbox.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	a.mustCLI(t, "import", crew, mboxFile)
	a.stop()

	orig, err := store.Open(a.cfg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	want, secret := archived(t, orig, crew)
	wantSearch := searched(t, orig, crew)
	if err := orig.Close(); err != nil {
		t.Fatal(err)
	}
	if len(want) < 200 {
		t.Fatalf("only %d messages archived from %d corpus files", len(want), len(files))
	}

	out, errOut, code := runCLI(t, a.cfgPath, "migrate", "-to", dsn)
	if code != 0 || !strings.Contains(out, "checked") {
		t.Fatalf("migrate to PostgreSQL: exit %d\n%s%s", code, out, errOut)
	}
	t.Log(strings.TrimSpace(out))
	if _, errOut, code := runCLI(t, a.cfgPath, "migrate", "-to", dsn); code == 0 || !strings.Contains(errOut, "empty") {
		t.Errorf("a second migrate into the same database: exit %d, %q; want a refusal", code, errOut)
	}

	pgCfg := postgresConfig(t, t.TempDir(), sink.Addr, dsn)
	b := startTestServer(t, pgCfg)
	got, gotSecret := archived(t, b.st, crew)
	sameArchive(t, "on PostgreSQL", got, want)
	if got := searched(t, b.st, crew); !slices.Equal(got, wantSearch) {
		t.Errorf("searches on PostgreSQL differ from bbolt's:\n%s", diffLines(got, wantSearch))
	}
	if !bytes.Equal(gotSecret, secret) {
		t.Fatal("the server's secret was not copied")
	}
	if u, err := b.svc.OneClick(link); err != nil || u.Address != "reader@example.test" {
		t.Fatalf("the one-click link minted before the move, on PostgreSQL: %+v, %v", u, err)
	}
	b.stop()

	back := filepath.Join(t.TempDir(), "back")
	if err := os.MkdirAll(back, 0o750); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = runCLI(t, pgCfg, "migrate", "-to", "bbolt:"+filepath.Join(back, store.FileName))
	if code != 0 || !strings.Contains(out, "checked") {
		t.Fatalf("migrate back to bbolt: exit %d\n%s%s", code, out, errOut)
	}
	// -from names the source whatever the configuration says: a's is the bbolt folder.
	other := filepath.Join(t.TempDir(), store.FileName)
	if out, errOut, code := runCLI(t, a.cfgPath, "migrate", "-from", dsn, "-to", "bbolt:"+other); code != 0 || !strings.Contains(out, "checked") {
		t.Fatalf("migrate -from PostgreSQL: exit %d\n%s%s", code, out, errOut)
	}
	cCfg := testConfig(t, t.TempDir(), sink.Addr, "")
	text, err := os.ReadFile(cCfg)
	if err != nil {
		t.Fatal(err)
	}
	text = regexp.MustCompile(`(?m)^data_dir = .*$`).ReplaceAll(text, []byte("data_dir = "+`"`+back+`"`))
	if err := os.WriteFile(cCfg, text, 0o600); err != nil {
		t.Fatal(err)
	}
	c := startTestServer(t, cCfg)
	got, gotSecret = archived(t, c.st, crew)
	sameArchive(t, "back on bbolt", got, want)
	if got := searched(t, c.st, crew); !slices.Equal(got, wantSearch) {
		t.Errorf("searches back on bbolt differ from the original's:\n%s", diffLines(got, wantSearch))
	}
	if !bytes.Equal(gotSecret, secret) {
		t.Fatal("the server's secret did not come back")
	}
	if u, err := c.svc.OneClick(link); err != nil || u.Address != "reader@example.test" {
		t.Fatalf("the one-click link minted before the moves, back on bbolt: %+v, %v", u, err)
	}
}

// diffLines says where got and want first differ, and how long each is.
func diffLines(got, want []string) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("line %d: got %s\nwant %s\n(%d lines, want %d)", i, got[i], want[i], len(got), len(want))
		}
	}
	return fmt.Sprintf("%d lines, want %d", len(got), len(want))
}
