package main

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"crewmail/internal/mailtest"
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
