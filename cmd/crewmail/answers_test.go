package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"crewmail/internal/mailtest"
	"crewmail/store"
)

// These tests send what a forger or an outsider would, with a real SMTP client, and count the
// mail crewmail sends to the addresses they aim at.

// mailsTo is the mail the sink received for addr, once everything queued has been delivered.
func mailsTo(t *testing.T, ts *testServer, sink *mailtest.Sink, addr string) []mailtest.Message {
	t.Helper()
	settle(t, ts)
	var got []mailtest.Message
	for _, m := range sink.Messages() {
		if m.To[0] == addr {
			got = append(got, m)
		}
	}
	return got
}

// TestDigestAddressAnswersOnlyMembers: mail to crew+digest@ tells nobody outside the list about
// its conversations, and never hands back a message whose sender is not proven.
func TestDigestAddressAnswersOnlyMembers(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink, "alice@example.test", "bob@example.test")
	if err := send(t, ts.SMTPAddr, "alice@example.test", []string{crew}, post("alice@example.test", "Secret plans", "plans@example.test", "x\r\n")); err != nil {
		t.Fatal(err)
	}
	sink.Wait(t, 2)
	digest := "crew+digest@" + testDomain
	// An outsider, proven or not, learns nothing; a forged outsider address gets nothing.
	if err := ask(t, ts, "mallory@example.test", digest, "what is new?", true); err != nil {
		t.Fatal(err)
	}
	if err := ask(t, ts, "victim@example.test", digest, "Click http://evil.example/ now", false); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"mallory@example.test", "victim@example.test"} {
		if got := mailsTo(t, ts, sink, a); len(got) != 0 {
			t.Errorf("%s got %d mails from crew+digest@:\n%s", a, len(got), got[0].Data)
		}
	}
	// A forger using bob's address: bob gets the links, at his address, but not the forger's mail.
	if err := ask(t, ts, "bob@example.test", digest, "Click http://evil.example/ now", false); err != nil {
		t.Fatal(err)
	}
	got := mailsTo(t, ts, sink, "bob@example.test")
	if len(got) != 2 {
		t.Fatalf("bob got %d mails, want his copy and one answer", len(got))
	}
	if a := got[1].Data; !bytes.Contains(a, []byte("Secret plans")) || bytes.Contains(a, []byte("message/rfc822")) || bytes.Contains(a, []byte("evil.example")) {
		t.Errorf("the answer to an unproven digest reply:\n%s", a)
	}
}

// TestOneMailOneAnswer: however many lines or mails ask, an address gets one answer per mail,
// and only a few an hour; a forged From never multiplies mail to its victim.
func TestOneMailOneAnswer(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink, "alice@example.test")
	ts.mustCLI(t, "list", "set", crew, "-join", "invite", "-owner", owner)
	request := "crew-request@" + testDomain

	// Twenty help lines from a forged address: one answer, with the help in it.
	if err := ask(t, ts, "victim@example.test", request, strings.Repeat("help\r\n", 20), false); err != nil {
		t.Fatal(err)
	}
	if got := mailsTo(t, ts, sink, "victim@example.test"); len(got) != 1 || !strings.Contains(text(t, got[0]), "crew+unsubscribe@"+testDomain) {
		t.Errorf("victim got %d mails for 20 help lines, want 1 with the help", len(got))
	}
	// A member's address, forged: leave, then daily and weekly over and over: one answer.
	if err := ask(t, ts, "alice@example.test", request, "unsubscribe\r\n"+strings.Repeat("daily\r\nweekly\r\n", 10), false); err != nil {
		t.Fatal(err)
	}
	if got := mailsTo(t, ts, sink, "alice@example.test"); len(got) != 1 {
		t.Errorf("alice got %d mails for 21 lines, want 1", len(got))
	}
	// An invitee saying subscribe twenty times gets the invitation once more, not twenty times.
	if err := ask(t, ts, owner, request, "invite erin@example.test\r\n", true); err != nil {
		t.Fatal(err)
	}
	if err := ask(t, ts, "erin@example.test", request, strings.Repeat("subscribe\r\n", 20), false); err != nil {
		t.Fatal(err)
	}
	if got := mailsTo(t, ts, sink, "erin@example.test"); len(got) != 2 {
		t.Errorf("erin got %d mails, want the invitation and one answer", len(got))
	}
	// Ten mails to crew+help@ from a forged address: three answers an hour, on all lists.
	ts.mustCLI(t, "list", "create", "team@"+testDomain)
	for i := range 10 {
		to := "crew+help@" + testDomain
		if i%2 == 1 {
			to = "team+help@" + testDomain
		}
		if err := ask(t, ts, "victim2@example.test", to, "", false); err != nil {
			t.Fatal(err)
		}
	}
	if got := mailsTo(t, ts, sink, "victim2@example.test"); len(got) != unprovenAnswersPerHourForTest {
		t.Errorf("victim2 got %d answers from 10 mails to +help, want %d", len(got), unprovenAnswersPerHourForTest)
	}
	ts.clock.Advance(61 * time.Minute)
	if err := ask(t, ts, "victim2@example.test", "crew+help@"+testDomain, "", false); err != nil {
		t.Fatal(err)
	}
	if got := mailsTo(t, ts, sink, "victim2@example.test"); len(got) != unprovenAnswersPerHourForTest+1 {
		t.Errorf("an hour later: %d answers in all, want %d", len(got), unprovenAnswersPerHourForTest+1)
	}
	// Several command addresses in one mail: one answer.
	msg := fmt.Appendf(nil, "From: victim3@example.test\r\nSubject: help\r\nMessage-ID: <multi@example.test>\r\n\r\nhelp\r\n")
	if err := send(t, ts.SMTPAddr, "relay@elsewhere.example", []string{"crew+help@" + testDomain, request, "crew+subscribe@" + testDomain, "team+help@" + testDomain}, msg); err != nil {
		t.Fatal(err)
	}
	if got := mailsTo(t, ts, sink, "victim3@example.test"); len(got) != 1 {
		t.Errorf("one mail to four command addresses made %d answers, want 1", len(got))
	}
}

const unprovenAnswersPerHourForTest = 3

// passwordWorks reports whether password is addr's app password now.
func passwordWorks(t *testing.T, ts *testServer, addr, password string) bool {
	t.Helper()
	var ok bool
	if err := ts.st.View(func(tx store.Tx) error {
		p, err := tx.AppPasswordOf(addr)
		ok = err == nil && bcrypt.CompareHashAndPassword(p.Hash, []byte(password)) == nil
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return ok
}

// TestForgedPasswordRequestKeepsPassword: a request for a new app password that is not proven
// leaves the member's password working; she gets a new one only when she confirms.
func TestForgedPasswordRequestKeepsPassword(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink, "alice@example.test")
	if err := ask(t, ts, "alice@example.test", "crew+password@"+testDomain, "", true); err != nil {
		t.Fatal(err)
	}
	pw1 := passwordRE.FindStringSubmatch(text(t, expect(t, sink, 1, "alice@example.test", "Password:")))[1]
	settle(t, ts)
	ts.clock.Advance(61 * time.Minute)

	// A forger asks, an hour later (the old limit): alice is asked, her password still works.
	if err := ask(t, ts, "alice@example.test", "crew+password@"+testDomain, "", false); err != nil {
		t.Fatal(err)
	}
	q := expect(t, sink, 2, "alice@example.test", "keeps working")
	if passwordRE.MatchString(text(t, q)) {
		t.Errorf("a forged request was answered with a password:\n%s", text(t, q))
	}
	if !passwordWorks(t, ts, "alice@example.test", pw1) {
		t.Fatal("a forged request replaced alice's password")
	}
	// She wants one after all: she replies, and the new one replaces the old.
	if err := answer(t, ts, q, gmailReply, "alice@example.test", "yes please", false); err != nil {
		t.Fatal(err)
	}
	pw2 := passwordRE.FindStringSubmatch(text(t, expect(t, sink, 3, "alice@example.test", "Password:")))
	if pw2 == nil || passwordWorks(t, ts, "alice@example.test", pw1) || !passwordWorks(t, ts, "alice@example.test", pw2[1]) {
		t.Errorf("after confirming: new password %v, old still works %v", pw2, passwordWorks(t, ts, "alice@example.test", pw1))
	}
}

// heldFor counts the posts `held ls` shows whose line holds each of want.
func heldFor(t *testing.T, ts *testServer, want ...string) int {
	t.Helper()
	n := 0
	for _, line := range strings.Split(ts.mustCLI(t, "held", "ls", crew), "\n")[1:] {
		ok := line != ""
		for _, w := range want {
			ok = ok && strings.Contains(line, w)
		}
		if ok {
			n++
		}
	}
	return n
}

// TestForgedPostsDoNotSilenceMember: posts forged under a member's address, waiting for her
// confirmation, never stop her own: her proven post is taken whatever waits, "this wasn't me"
// (a reply saying no, or the address for it) drops every unconfirmed post under her address,
// and one she confirms leaves the others to decide one by one.
func TestForgedPostsDoNotSilenceMember(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink, "alice@example.test", "bob@example.test")
	ts.mustCLI(t, "list", "set", crew, "-moderated", "true", "-owner", owner)
	forge := func(i int) error {
		t.Helper()
		return send(t, ts.SMTPAddr, "relay@elsewhere.example", []string{crew}, post("alice@example.test", fmt.Sprintf("Forged %d", i), fmt.Sprintf("forged%d@evil.example", i), "x\r\n"))
	}
	for i := range 5 {
		if err := forge(i); err != nil {
			t.Fatalf("forged post %d: %v", i, err)
		}
	}
	if err := forge(5); smtpCode(err) != "550 5.7.1" {
		t.Errorf("a sixth forged post: %v", err)
	}
	got := mailsTo(t, ts, sink, "alice@example.test")
	if len(got) != 5 {
		t.Fatalf("alice was asked %d times, want 5", len(got))
	}
	asks := map[int]mailtest.Message{} // by the post each asks about
	for _, m := range got {
		var i int
		if _, err := fmt.Sscanf(strings.SplitN(strings.SplitN(text(t, m), "Subject: Forged ", 2)[1], "\n", 2)[0], "%d", &i); err != nil {
			t.Fatalf("which post does this ask about?\n%s", text(t, m))
		}
		asks[i] = m
	}
	// Her own post, proven, is taken (here: for the moderators) though five forged ones wait.
	if err := send(t, ts.SMTPAddr, "alice@example.test", []string{crew}, post("alice@example.test", "Real news", "real@example.test", "x\r\n")); err != nil {
		t.Fatalf("alice's proven post: %v", err)
	}
	if n := heldFor(t, ts, "Real news", "moderator"); n != 1 {
		t.Errorf("alice's proven post is not with the moderators")
	}
	// She confirms one she did send: that one moves on, the other four still wait for her.
	if err := answer(t, ts, asks[1], gmailReply, "alice@example.test", "yes", false); err != nil {
		t.Fatal(err)
	}
	if a, m := heldFor(t, ts, "Forged", "author"), heldFor(t, ts, "Forged 1", "moderator"); a != 4 || m != 1 {
		t.Errorf("after confirming one: %d wait for alice, want 4; confirmed with the moderators: %d", a, m)
	}
	// A reply saying it was not her sends nothing and drops all four.
	if err := answer(t, ts, asks[0], thunderbirdReply, "alice@example.test", "No, that was not me!", false); err != nil {
		t.Fatal(err)
	}
	if n := heldFor(t, ts, "Forged", "author"); n != 0 {
		t.Errorf("after \"no\": %d forged posts still wait for alice", n)
	}
	if n := heldFor(t, ts, "Forged 0", "moderator"); n != 0 {
		t.Error("a reply saying no passed the forged post on")
	}
	// More forged posts; the "this wasn't me" address of one drops them all.
	for i := 6; i < 8; i++ {
		if err := forge(i); err != nil {
			t.Fatalf("forged post %d: %v", i, err)
		}
	}
	got = mailsTo(t, ts, sink, "alice@example.test")
	last := got[len(got)-1]
	addrs := confirmAddresses(t, last)
	if len(addrs) != 2 {
		t.Fatalf("the question names %d confirm addresses, want 2 (it was me / it was not):\n%s", len(addrs), text(t, last))
	}
	if err := ask(t, ts, "alice@example.test", addrs[1], "", false); err != nil {
		t.Fatal(err)
	}
	if n := heldFor(t, ts, "Forged", "author"); n != 0 {
		t.Errorf("after \"this wasn't me\": %d forged posts still wait for alice", n)
	}
}

// TestModeratorsNotFlooded: posts from ever new non-member addresses, held for the moderators,
// bring them a bounded number of mails an hour; the rest wait quietly, are counted in the
// notices that go, and are announced in later hours; a list holds a bounded number of them
// from unproven authors.
func TestModeratorsNotFlooded(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink, "alice@example.test")
	ts.mustCLI(t, "list", "set", crew, "-nonmembers", "hold", "-owner", owner)
	postAs := func(i int) error {
		t.Helper()
		from := fmt.Sprintf("stranger%d@example.test", i)
		return send(t, ts.SMTPAddr, "relay@elsewhere.example", []string{crew}, post(from, fmt.Sprintf("Offer %d", i), fmt.Sprintf("offer%d@example.test", i), "x\r\n"))
	}
	for i := range 30 {
		if err := postAs(i); err != nil {
			t.Fatalf("post %d: %v", i, err)
		}
	}
	notices := mailsTo(t, ts, sink, owner)
	if len(notices) != moderationNoticesPerHourForTest {
		t.Errorf("30 held posts made %d notices to the moderator in an hour, want %d", len(notices), moderationNoticesPerHourForTest)
	}
	if n := heldFor(t, ts, "Offer", "moderator"); n != 30 {
		t.Errorf("%d posts held, want 30", n)
	}
	if last := text(t, notices[len(notices)-1]); !strings.Contains(last, "more posts wait") {
		t.Errorf("the last notice does not say more wait:\n%s", last)
	}
	// An hour later the sweeper announces the next ones.
	ts.clock.Advance(61 * time.Minute)
	if _, err := ts.svc.Sweep(); err != nil {
		t.Fatal(err)
	}
	if n := len(mailsTo(t, ts, sink, owner)); n != 2*moderationNoticesPerHourForTest {
		t.Errorf("an hour later: %d notices in all, want %d", n, 2*moderationNoticesPerHourForTest)
	}
	// The list holds a bounded number; beyond, posts are deferred, not lost.
	var err error
	for i := 30; i < 200 && err == nil; i++ {
		err = postAs(i)
	}
	if smtpCode(err) != "452 4.3.1" {
		t.Errorf("posts beyond what the list holds: %v", err)
	}
	// A proven post is still taken: what forgers sent never defers it.
	if err := send(t, ts.SMTPAddr, "guest@example.test", []string{crew}, post("guest@example.test", "Proven guest", "guest@example.test", "x\r\n")); err != nil {
		t.Errorf("a proven post after the flood: %v", err)
	}
	if n := heldFor(t, ts, "Offer", "moderator"); n > 200 {
		t.Errorf("%d posts held", n)
	}
}

const moderationNoticesPerHourForTest = 10
