package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"crewmail/internal/mailtest"
)

// askSubject is ask with a subject: a proven mail from addr to to.
func askSubject(t *testing.T, ts *testServer, addr, to, subject, body string) error {
	t.Helper()
	msg := fmt.Appendf(nil, "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: Wed, 25 Nov 2026 10:00:00 +0000\r\nMessage-ID: <s%d@client.example.test>\r\n\r\n%s", addr, to, subject, time.Now().UnixNano(), body)
	return send(t, ts.SMTPAddr, addr, []string{to}, msg)
}

// TestCommandsReadLikePeopleWrite: the answer names the address the mail went to; a subject
// word is a command only when the text has none; a typo gets "did you mean", once; the
// greeting and signature after a command are not answered.
func TestCommandsReadLikePeopleWrite(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink, "alice@example.test", "bob@example.test")
	request := "crew-request@" + testDomain

	// "Subject: unsubscribe" over a text that asks for a daily digest: only the digest.
	if err := askSubject(t, ts, "alice@example.test", request, "unsubscribe", "daily\r\n\r\nThanks so much for running this!\r\nAlice\r\n"); err != nil {
		t.Fatal(err)
	}
	r := expect(t, sink, 1, "alice@example.test", "This is what became of your mail to "+request+":", "daily")
	if txt := text(t, r); strings.Contains(txt, "not a command") || strings.Contains(txt, "Thanks so much") || strings.Contains(txt, "unsubscribe:") {
		t.Errorf("the subject ran, or the prose after the command was answered:\n%s", txt)
	}
	if !strings.Contains(members(t, ts), "alice@example.test  daily") {
		t.Errorf("alice is not on the list in daily mode:\n%s", members(t, ts))
	}

	// A typo: "did you mean", once, without the whole list of commands.
	if err := askSubject(t, ts, "bob@example.test", request, "", "dayly\r\nweelky\r\n"); err != nil {
		t.Fatal(err)
	}
	r = expect(t, sink, 2, "bob@example.test", `"dayly": not a command. Did you mean daily?`)
	if txt := text(t, r); strings.Count(txt, "Did you mean") != 1 || strings.Contains(txt, "the commands are") || strings.Contains(txt, "weelky") {
		t.Errorf("the answer to two typos:\n%s", txt)
	}

	// The answer to a command address names that address, not crew-request@.
	if err := askSubject(t, ts, "carol@example.test", "crew+password@"+testDomain, "", ""); err != nil {
		t.Fatal(err)
	}
	expect(t, sink, 3, "carol@example.test", "This is what became of your mail to crew+password@"+testDomain+":")
}

// TestOwnerTools: a list's description and its owners' welcome text reach new members; an
// invitation carries the owner's note; banned addresses may neither join nor post (CLI and by
// mail); a new member's first post waits for the moderators where the list wants that.
func TestOwnerTools(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink, "alice@example.test")
	welcome := filepath.Join(t.TempDir(), "welcome.txt")
	if err := os.WriteFile(welcome, []byte("We meet on the first Saturday\nof the month.\n\nSign your posts with your plot number.\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ts.mustCLI(t, "list", "set", crew, "-owner", owner, "-description", "For the plot holders of Elm Street.", "-welcome-file", welcome, "-moderate-first-posts", "true")
	ts.mustCLI(t, "member", "add", crew, "bob@example.test", "-welcome")
	expect(t, sink, 1, "bob@example.test", "Welcome to Garden crew", "You are now a member of Garden crew, as bob@example.test. For the plot holders of Elm Street.",
		"\n\nWe meet on the first Saturday of the month.\n\nSign your posts with your plot number.\n")

	// An invitation by mail with a personal note.
	request := "crew-request@" + testDomain
	if err := askSubject(t, ts, owner, request, "", "invite carol@example.test Hi Carol, this is where we swap seedlings.\r\n"); err != nil {
		t.Fatal(err)
	}
	expectSome(t, ts, sink, "carol@example.test", "You are invited to join Garden crew", owner+" writes:\n\n  Hi Carol, this is where we swap seedlings.", "For the plot holders of Elm Street.")
	expectSome(t, ts, sink, owner, "invite carol@example.test: invitation sent.")

	// Bans: by the CLI and by an owner's mail; a banned address can neither post nor join.
	if out := ts.mustCLI(t, "ban", crew, "spam@example.test"); !strings.Contains(out, "spam@example.test") {
		t.Errorf("ban: %q", out)
	}
	if err := askSubject(t, ts, owner, request, "", "ban @junk.example\r\n"); err != nil {
		t.Fatal(err)
	}
	expectSome(t, ts, sink, owner, "ban @junk.example: done")
	if err := send(t, ts.SMTPAddr, "spam@example.test", []string{crew}, post("spam@example.test", "Buy", "buy@example.test", "cheap\r\n")); smtpCode(err) != "550 5.7.1" {
		t.Errorf("a banned address's post: %v", err)
	}
	if err := askSubject(t, ts, "x@junk.example", "crew+subscribe@"+testDomain, "", ""); err != nil {
		t.Fatal(err)
	}
	expectSome(t, ts, sink, "x@junk.example", "subscribe: x@junk.example may not join crew@"+testDomain+".")
	if out := ts.mustCLI(t, "unban", crew, "spam@example.test"); strings.Contains(out, "spam@example.test") {
		t.Errorf("unban: %q", out)
	}

	// Bob's first post waits for the moderators; his second goes out at once.
	before := len(sink.Messages())
	if err := send(t, ts.SMTPAddr, "bob@example.test", []string{crew}, post("bob@example.test", "Hello all", "hello@example.test", "I am new here.\r\n")); err != nil {
		t.Fatal(err)
	}
	n := expectSome(t, ts, sink, owner, "waits for you: Hello all", "first post")
	expectSome(t, ts, sink, "bob@example.test", "waits for a moderator: Hello all")
	if err := answer(t, ts, n, thunderbirdReply, owner, "approve", false); err != nil {
		t.Fatal(err)
	}
	expectSome(t, ts, sink, "alice@example.test", "Subject: Hello all")
	if err := send(t, ts.SMTPAddr, "bob@example.test", []string{crew}, post("bob@example.test", "Second", "second@example.test", "Again.\r\n")); err != nil {
		t.Fatal(err)
	}
	expectSome(t, ts, sink, "alice@example.test", "Subject: Second")
	for _, m := range sink.Messages()[before:] {
		if strings.Contains(text(t, m), "waits for you: Second") {
			t.Error("bob's second post was held too")
		}
	}
}

// TestOwnerNoticesDaily: with -owner-notices daily the owners get one mail a day naming who
// joined, instead of a mail for each.
func TestOwnerNoticesDaily(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink, "alice@example.test")
	ts.mustCLI(t, "list", "set", crew, "-join", "open", "-owner", owner, "-owner-notices", "daily")
	for i, who := range []string{"carol@example.test", "dave@example.test"} {
		if err := ask(t, ts, who, "crew+subscribe@"+testDomain, "", false); err != nil {
			t.Fatal(err)
		}
		c := expect(t, sink, 2*i+1, who, "Subject: Confirm: join Garden crew")
		if err := answer(t, ts, c, gmailReply, who, "yes", false); err != nil {
			t.Fatal(err)
		}
		expect(t, sink, 2*i+2, who, "Welcome to Garden crew")
	}
	settle(t, ts)
	if got := mailsTo(t, ts, sink, owner); len(got) != 0 {
		t.Fatalf("the owner got %d mails at once, want none until the day's", len(got))
	}
	ts.clock.Advance(25 * time.Hour)
	if _, err := ts.svc.Sweep(); err != nil {
		t.Fatal(err)
	}
	expectSome(t, ts, sink, owner, "Subject: Who joined and left Garden crew today", "- carol@example.test joined on", "- dave@example.test joined on")
	if got := mailsTo(t, ts, sink, owner); len(got) != 1 {
		t.Errorf("the owner got %d mails, want the one of the day", len(got))
	}
}
