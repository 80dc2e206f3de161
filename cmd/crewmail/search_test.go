package main

import (
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"crewmail/internal/mailtest"
	"crewmail/internal/searchq"
	"crewmail/store"
)

// TestSearchByMail: "search WORDS" to crew-request@ answers a member with the matching
// conversations, newest first, each with the line that matched, its web link (base_url is
// set) and a Reply address that posts into it; someone who is not a member is told no.
func TestSearchByMail(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	cfg := testConfig(t, t.TempDir(), sink.Addr, "")
	text0, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, []byte(strings.Replace(string(text0), "[http]\n", "[http]\nbase_url = \"https://lists.example.test/\"\n", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	ts := startTestServer(t, cfg)
	ts.mustCLI(t, "list", "create", crew, "-name", "Garden crew")
	alice, bob, carol := "alice@example.test", "bob@example.test", "carol@example.test"
	ts.mustCLI(t, "member", "add", crew, alice, bob)
	postAs := func(from, subject, msgid, inReplyTo, body string) {
		t.Helper()
		msg := post(from, subject, msgid, body)
		if inReplyTo != "" {
			msg = append([]byte("In-Reply-To: <"+inReplyTo+">\r\n"), msg...)
		}
		if err := send(t, ts.SMTPAddr, from, []string{crew}, msg); err != nil {
			t.Fatal(err)
		}
		settle(t, ts)
	}
	postAs(alice, "Picnic on Saturday", "picnic@example.test", "", "Shall we meet at the lake?\r\nI will bring bread.\r\n")
	postAs(bob, "Seeds", "seeds@example.test", "", "Who has tomato seeds left? The café sells them.\r\n")
	postAs(bob, "Re: Picnic on Saturday", "picnic-2@example.test", "picnic@example.test", "The lake is fine by me.\r\n\r\nalice wrote:\r\n> I will bring bread.\r\n")

	n := len(sink.Messages())
	if err := ask(t, ts, alice, "crew-request@"+testDomain, "search lake\r\nsearch cafe\r\nsearch from:bob bread\r\nsearch in:quotes from:bob bread\r\n", true); err != nil {
		t.Fatal(err)
	}
	answer := among(t, sink, n, n+1, alice, "search lake: 1 conversation")
	txt := text(t, answer)
	for _, want := range []string{
		"1. Re: Picnic on Saturday — bob@example.test", "(2 matching posts)",
		"| The lake is fine by me.",
		"Read: https://lists.example.test/l/crew@" + testDomain + "/t/1",
		"search cafe: 1 conversation", "1. Seeds", "| Who has tomato seeds left? The café sells them.",
		"search from:bob bread: nothing found.", // bob's "bread" is only in a quote
		"search in:quotes from:bob bread: 1 conversation",
	} {
		if !strings.Contains(txt, want) {
			t.Errorf("the answer lacks %q:\n%s", want, txt)
		}
	}
	// The Reply address posts into the conversation found.
	reply := regexp.MustCompile(`Reply: (crew\+r-[a-z0-9]+@` + regexp.QuoteMeta(testDomain) + `)`).FindStringSubmatch(txt)
	if reply == nil {
		t.Fatalf("no Reply address in:\n%s", txt)
	}
	msg := fmt.Appendf(nil, "From: %s\r\nTo: %s\r\nSubject: picnic\r\nMessage-ID: <r1@example.test>\r\n\r\nCount me in.\r\n", alice, reply[1])
	if err := send(t, ts.SMTPAddr, alice, []string{reply[1]}, msg); err != nil {
		t.Fatal(err)
	}
	settle(t, ts)
	if out := ts.mustCLI(t, "archive", "ls", crew); !regexp.MustCompile(`(?m)^4\s+\S+ \S+\s+1\s.*<r1@example\.test>`).MatchString(out) {
		t.Errorf("the reply is not archived in thread 1:\n%s", out)
	}

	n = len(sink.Messages())
	if err := ask(t, ts, carol, "crew-request@"+testDomain, "search lake\r\n", true); err != nil {
		t.Fatal(err)
	}
	got := text(t, among(t, sink, n, n+1, carol, "search: only members of "+crew+" can search its archive."))
	if strings.Contains(got, "Picnic") {
		t.Errorf("a non-member was told about the archive:\n%s", got)
	}
}

// TestReindexRebuildsADroppedIndex: with the index emptied (as after an upgrade from a
// database without one), nothing is found and the index says it is not complete; crewmail
// reindex, run against the running server, makes it whole again.
func TestReindexRebuildsADroppedIndex(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink, "alice@example.test", "bob@example.test")
	for i, body := range []string{"Rhubarb is ready.", "Who wants rhubarb?", "Beans, not rhubarb."} {
		if err := send(t, ts.SMTPAddr, "alice@example.test", []string{crew}, post("alice@example.test", "Harvest", fmt.Sprintf("h%d@example.test", i), body+"\r\n")); err != nil {
			t.Fatal(err)
		}
	}
	settle(t, ts)
	found := func() (seqs []uint64, complete bool) {
		t.Helper()
		q, err := searchq.Parse("rhubarb")
		if err != nil {
			t.Fatal(err)
		}
		if err := ts.st.View(func(tx store.Tx) error {
			seqs = nil
			if err := tx.SearchPosts(crew, q, 0, func(h store.Hit) error { seqs = append(seqs, h.Seq); return nil }); err != nil {
				return err
			}
			complete, err = tx.SearchIndexed(crew)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return seqs, complete
	}
	if seqs, complete := found(); !reflect.DeepEqual(seqs, []uint64{3, 2, 1}) || !complete {
		t.Fatalf("before: found %v, complete %v", seqs, complete)
	}
	if err := ts.st.Update(func(tx store.Tx) error { return tx.ClearSearch(crew) }); err != nil {
		t.Fatal(err)
	}
	if seqs, complete := found(); len(seqs) != 0 || complete {
		t.Fatalf("dropped: found %v, complete %v", seqs, complete)
	}
	if out := ts.mustCLI(t, "reindex"); !strings.Contains(out, "indexed 3 posts of "+crew) {
		t.Errorf("crewmail reindex said %q", out)
	}
	if seqs, complete := found(); !reflect.DeepEqual(seqs, []uint64{3, 2, 1}) || !complete {
		t.Errorf("after reindex: found %v, complete %v", seqs, complete)
	}
	// Without a configured base_url the answer gives Reply addresses and no web links; the
	// post with the excluded word is not there.
	n := len(sink.Messages())
	if err := ask(t, ts, "bob@example.test", "crew-request@"+testDomain, "search rhubarb -beans\r\n", true); err != nil {
		t.Fatal(err)
	}
	txt := text(t, among(t, sink, n, n+1, "bob@example.test", "search rhubarb -beans: 2 conversations, the newest first:", "1. Harvest", "| Who wants rhubarb?", "2. Harvest", "| Rhubarb is ready.", "Reply: crew+r-"))
	if strings.Contains(txt, "Beans") || strings.Contains(txt, "Read:") || strings.Contains(txt, "http") {
		t.Errorf("web links without a base_url:\n%s", txt)
	}
	if _, errOut, code := ts.cli(t, "reindex", "nosuch@"+testDomain); code == exitOK || !strings.Contains(errOut, "there is no list nosuch@"+testDomain) {
		t.Errorf("reindex of no list: exit %d, %q", code, errOut)
	}
}
