package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"crewmail/internal/mailtest"
)

// Attention controls: what a member does to hear less, or more, of a list, in any mode.

// forwardAsAttachment is a forward that carries m whole as message/rfc822, as Outlook's
// "Forward as Attachment" (and Thunderbird's "Forward As > Attachment") send it.
func forwardAsAttachment(from, to, said string, m mailtest.Message) []byte {
	return fmt.Appendf(nil, "From: %s\r\nTo: %s\r\nSubject: FW: a conversation\r\nDate: Wed, 25 Nov 2026 11:00:00 +0000\r\n"+
		"Message-ID: <fw%d@client.example.test>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"_004_fw\"\r\n\r\n"+
		"--_004_fw\r\nContent-Type: text/plain; charset=\"us-ascii\"\r\n\r\n%s\r\n\r\n"+
		"--_004_fw\r\nContent-Type: message/rfc822\r\nContent-Disposition: attachment; filename=\"conversation.eml\"\r\n\r\n%s\r\n--_004_fw--\r\n",
		from, to, len(said), said, m.Data)
}

// TestMuteAndFollowByReplyOrForward: a reply (from any client) or a forward as an attachment
// of any list message, sent to crew+mute@ or crew+follow@, mutes or follows the conversation it
// belongs to. A muted conversation stops reaching the member; a followed one reaches a digest
// member post by post and stays out of her digest. Each such mail gets one short answer; one
// naming no conversation of the list is told so, and nothing changes.
func TestMuteAndFollowByReplyOrForward(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	const alice, bob, carol, dave = "alice@example.test", "bob@example.test", "carol@example.test", "dave@example.test"
	ts := newCrew(t, sink, alice, bob, carol, dave)
	ts.mustCLI(t, "member", "mode", crew, carol, "daily")
	ts.mustCLI(t, "member", "mode", crew, dave, "weekly")
	muteAddr, followAddr := "crew+mute@"+testDomain, "crew+follow@"+testDomain
	for _, p := range []struct{ subject, id string }{{"Seeds", "seeds@example.test"}, {"Tools", "tools@example.test"}} {
		if err := send(t, ts.SMTPAddr, alice, []string{crew}, post(alice, p.subject, p.id, "About "+strings.ToLower(p.subject)+".\r\n")); err != nil {
			t.Fatal(err)
		}
	}
	copies := mailsTo(t, ts, sink, bob)
	if len(copies) != 2 {
		t.Fatalf("bob got %d copies, want 2", len(copies))
	}
	seeds, tools := copies[0], copies[1]
	if !strings.Contains(text(t, seeds), "Seeds") {
		seeds, tools = tools, seeds
	}
	n := len(sink.Messages())
	ask := func(from, to string, msg []byte, want ...string) {
		t.Helper()
		if err := send(t, ts.SMTPAddr, from, []string{to}, msg); err != nil {
			t.Fatalf("mail from %s to %s: %v", from, to, err)
		}
		n++
		expect(t, sink, n, from, want...)
	}
	// Thunderbird: bob mutes Seeds by replying to its copy. Gmail: carol (daily) follows Tools.
	// Outlook: dave (weekly) forwards Seeds as an attachment to follow it. Apple Mail: bob's
	// reply to a mail that is not the list's names no conversation.
	ask(bob, muteAddr, replyTo(t, seeds, muteAddr, thunderbirdReply, bob, "Not for me, thanks."), "Muted: Seeds")
	ask(carol, followAddr, replyTo(t, tools, followAddr, gmailReply, carol, "I want these as they come."), "Following: Tools", "at once")
	ask(dave, followAddr, forwardAsAttachment(dave, followAddr, "follow this one please", seeds), "Following: Seeds")
	ask(bob, muteAddr, appleMailReply(bob, muteAddr, "Lunch", "apple1@client.example.test", "lunch@elsewhere.example", "mute", "see you"), "Which conversation", "Nothing was done")

	// Alice answers in both conversations.
	for _, r := range []struct{ subject, id, parent string }{{"Re: Seeds", "seeds-2@example.test", "seeds@example.test"}, {"Re: Tools", "tools-2@example.test", "tools@example.test"}} {
		msg := append([]byte("In-Reply-To: <"+r.parent+">\r\nReferences: <"+r.parent+">\r\n"), post(alice, r.subject, r.id, "reply "+r.id+"\r\n")...)
		if err := send(t, ts.SMTPAddr, alice, []string{crew}, msg); err != nil {
			t.Fatal(err)
		}
	}
	got := func(addr, id string) bool {
		for _, m := range mailsTo(t, ts, sink, addr) {
			if strings.Contains(string(m.Data), "Message-ID: <"+id+">") {
				return true
			}
		}
		return false
	}
	for _, c := range []struct {
		who, id string
		want    bool
	}{
		{bob, "seeds-2@example.test", false}, {bob, "tools-2@example.test", true}, // muted Seeds
		{carol, "tools-2@example.test", true}, {carol, "seeds-2@example.test", false}, // follows Tools
		{dave, "seeds-2@example.test", true}, {dave, "tools-2@example.test", false}, // follows Seeds
	} {
		if got(c.who, c.id) != c.want {
			t.Errorf("%s got %s at once: %v, want %v", c.who, c.id, !c.want, c.want)
		}
	}
	// Their digests leave out what came at once.
	for _, c := range []struct{ who, in, out string }{{carol, "reply seeds-2", "reply tools-2"}, {dave, "reply tools-2", "reply seeds-2"}} {
		preview := ts.mustCLI(t, "digest", "preview", crew, "-member", c.who)
		if !strings.Contains(preview, c.in) || strings.Contains(preview, c.out) {
			t.Errorf("%s's digest should hold %q and not %q:\n%s", c.who, c.in, c.out, preview)
		}
	}
	// The answer's link sets it back: dave gets Seeds in his digest again.
	settle(t, ts)
	n = len(sink.Messages())
	ask(dave, ts.svc.UnmuteAddress(crew, 1), []byte("From: "+dave+"\r\nSubject: stop\r\nMessage-ID: <u1@client.example.test>\r\n\r\nstop\r\n"), "Unmuted")
	if preview := ts.mustCLI(t, "digest", "preview", crew, "-member", dave); !strings.Contains(preview, "reply seeds-2") {
		t.Errorf("dave's digest after he stopped following Seeds:\n%s", preview)
	}
}

// unsubscribeLink is the one-click link of the copy m (List-Unsubscribe).
func unsubscribeLink(t *testing.T, m mailtest.Message) string {
	t.Helper()
	return strings.Trim(strings.Split(header(t, m, "List-Unsubscribe"), ",")[0], "<>")
}

// webPost posts form to link and returns the status and page.
func webPost(t *testing.T, link string, form url.Values) (int, string) {
	t.Helper()
	resp, err := http.PostForm(link, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	page, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(page)
}

var undoRE = regexp.MustCompile(`name="undo" value="([a-z0-9]+)"`)

// TestUnsubscribePageOffersLessMailAndUndo: the one-click unsubscribe page offers a weekly
// digest and no mail instead of leaving (each a POST that changes the mode at once); the
// one-click POST still unsubscribes, and then offers an undo that brings the member back in
// her mode with no confirmation and no owner's approval, for 7 days. Leaving by mail works the
// same: the confirmation offers the same alternatives, and a reply to the goodbye undoes it.
func TestUnsubscribePageOffersLessMailAndUndo(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	const alice, bob, carol, dave = "alice@example.test", "bob@example.test", "carol@example.test", "dave@example.test"
	ts := newCrew(t, sink, alice, bob, carol, dave)
	ts.mustCLI(t, "list", "set", crew, "-owner", owner, "-join", "approve")
	ts.mustCLI(t, "member", "mode", crew, dave, "daily")
	if err := send(t, ts.SMTPAddr, alice, []string{crew}, post(alice, "Seeds", "seeds@example.test", "About seeds.\r\n")); err != nil {
		t.Fatal(err)
	}
	links := map[string]string{}
	for _, who := range []string{bob, carol} {
		links[who] = unsubscribeLink(t, mailsTo(t, ts, sink, who)[0])
	}
	resp, err := http.Get(links[bob])
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`name="mode" value="weekly"`, `name="mode" value="nomail"`, "One digest a week", "No mail", `name="List-Unsubscribe" value="One-Click"`} {
		if !bytes.Contains(page, []byte(want)) {
			t.Errorf("the unsubscribe page lacks %q:\n%s", want, page)
		}
	}
	// Bob takes the weekly digest instead: at once, told by mail, still a member.
	if code, page := webPost(t, links[bob], url.Values{"mode": {"weekly"}}); code != 200 || !strings.Contains(page, "one weekly digest") {
		t.Fatalf("POST mode=weekly: %d\n%s", code, page)
	}
	if m := members(t, ts); !strings.Contains(m, bob+"  weekly") && !regexp.MustCompile(`bob@example.test\s+weekly`).MatchString(m) {
		t.Fatalf("bob after choosing a weekly digest:\n%s", m)
	}
	if got := mailsTo(t, ts, sink, bob); len(got) != 2 || !strings.Contains(text(t, got[1]), "weekly") {
		t.Fatalf("bob was not told of his new mode: %d mails", len(got))
	}
	if code, _ := webPost(t, links[bob], url.Values{"mode": {"each"}}); code != 404 {
		t.Errorf("POST mode=each (not offered): %d, want 404", code)
	}
	// Carol leaves by the one-click POST, and undoes it from the page.
	code, left := webPost(t, links[carol], url.Values{"List-Unsubscribe": {"One-Click"}})
	undo := undoRE.FindStringSubmatch(left)
	if code != 200 || undo == nil || strings.Contains(members(t, ts), carol) {
		t.Fatalf("one-click POST: %d, carol still a member: %v\n%s", code, strings.Contains(members(t, ts), carol), left)
	}
	if code, page := webPost(t, links[carol], url.Values{"undo": {undo[1]}}); code != 200 || !strings.Contains(page, "again") {
		t.Fatalf("undo: %d\n%s", code, page)
	}
	if !regexp.MustCompile(`carol@example.test\s+each`).MatchString(members(t, ts)) {
		t.Fatalf("carol is not back in her mode:\n%s", members(t, ts))
	}
	noApproval := func() {
		t.Helper()
		for _, m := range mailsTo(t, ts, sink, owner) {
			if txt := text(t, m); strings.Contains(txt, "approve") {
				t.Errorf("the owner was asked to approve a member who came back:\n%s", txt)
			}
		}
	}
	noApproval()
	if code, _ := webPost(t, links[carol], url.Values{"undo": {undo[1]}}); code != 404 {
		t.Errorf("a second undo: %d, want 404", code)
	}

	// Dave (daily) leaves by mail: the confirmation offers less mail; a reply confirms; mail
	// to the undo address of the goodbye brings him back, daily again, without an owner (a
	// reply to the goodbye itself goes to the owners).
	n := len(sink.Messages())
	if err := ask(t, ts, dave, "crew+unsubscribe@"+testDomain, "", false); err != nil {
		t.Fatal(err)
	}
	n++
	c := expect(t, sink, n, dave, "Confirm: leave", "crew+weekly@"+testDomain, "crew+nomail@"+testDomain)
	if err := answer(t, ts, c, gmailReply, dave, "Yes please.", false); err != nil {
		t.Fatal(err)
	}
	settle(t, ts)
	var bye mailtest.Message
	for _, m := range mailsTo(t, ts, sink, dave) {
		if strings.Contains(text(t, m), "Changed your mind?") {
			bye = m
		}
	}
	if bye.Data == nil || strings.Contains(members(t, ts), dave) {
		t.Fatalf("dave left without an undo in his goodbye (member: %v)", strings.Contains(members(t, ts), dave))
	}
	if got := replyAddress(t, bye); got != "crew+owner@"+testDomain {
		t.Errorf("a reply to the goodbye goes to %s, want the owners", got)
	}
	undoAddr := regexp.MustCompile(`crew\+confirm-[a-z0-9]+@` + regexp.QuoteMeta(testDomain)).FindString(text(t, bye))
	if undoAddr == "" {
		t.Fatalf("no undo address in the goodbye:\n%s", text(t, bye))
	}
	if err := send(t, ts.SMTPAddr, "relay@elsewhere.example", []string{undoAddr}, replyTo(t, bye, undoAddr, appleMailReply, dave, "Oops, I want to stay.")); err != nil {
		t.Fatal(err)
	}
	settle(t, ts)
	if !regexp.MustCompile(`dave@example.test\s+daily`).MatchString(members(t, ts)) {
		t.Fatalf("dave is not back, daily:\n%s", members(t, ts))
	}
	noApproval()
	// An undo is good for 7 days: carol leaves again (by the link in her next copy: she is
	// a member anew) and tries on the eighth day.
	if err := send(t, ts.SMTPAddr, alice, []string{crew}, post(alice, "Tools", "tools@example.test", "About tools.\r\n")); err != nil {
		t.Fatal(err)
	}
	copies := mailsTo(t, ts, sink, carol)
	links[carol] = unsubscribeLink(t, copies[len(copies)-1])
	_, left = webPost(t, links[carol], url.Values{"List-Unsubscribe": {"One-Click"}})
	undo = undoRE.FindStringSubmatch(left)
	ts.clock.Advance(8 * 24 * time.Hour)
	if code, page := webPost(t, links[carol], url.Values{"undo": {undo[1]}}); code != 404 || strings.Contains(members(t, ts), carol) {
		t.Errorf("an undo after 8 days: %d\n%s", code, page)
	}
}

// TestNoOwnPosts: a member set to -no-own-posts (by the operator, or by "selfcopy off" to
// crew-request@) does not get her own posts back, by mail nor in her digest; everyone else
// does, and -own-posts brings hers back.
func TestNoOwnPosts(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	const alice, bob, carol = "alice@example.test", "bob@example.test", "carol@example.test"
	ts := newCrew(t, sink, bob)
	ts.mustCLI(t, "member", "add", crew, alice, "-no-own-posts")
	ts.mustCLI(t, "member", "add", crew, carol, "-mode", "daily")
	if _, _, code := ts.cli(t, "member", "set", crew, alice); code != 2 {
		t.Errorf("member set without a flag: exit %d, want 2", code)
	}
	if !regexp.MustCompile(`alice@example.test\s+each, no own posts`).MatchString(members(t, ts)) {
		t.Errorf("member ls does not show alice's choice:\n%s", members(t, ts))
	}
	// Carol turns her own posts off by mail.
	if err := send(t, ts.SMTPAddr, carol, []string{"crew-request@" + testDomain}, outlookHTMLReply(carol, "crew-request@"+testDomain, "commands", "sc1@client.example.test", "x@example.test", "selfcopy off", "")); err != nil {
		t.Fatal(err)
	}
	expect(t, sink, 1, carol, "selfcopy off: your own posts are no longer sent back to you")
	for _, p := range []struct{ from, subject, id string }{{alice, "Seeds", "seeds@example.test"}, {carol, "Tools", "tools@example.test"}} {
		if err := send(t, ts.SMTPAddr, p.from, []string{crew}, post(p.from, p.subject, p.id, "About "+p.subject+".\r\n")); err != nil {
			t.Fatal(err)
		}
	}
	if got := mailsTo(t, ts, sink, bob); len(got) != 2 {
		t.Errorf("bob got %d posts, want 2", len(got))
	}
	for _, m := range mailsTo(t, ts, sink, alice) {
		if strings.Contains(string(m.Data), "Message-ID: <seeds@example.test>") {
			t.Errorf("alice got her own post back")
		}
	}
	preview := ts.mustCLI(t, "digest", "preview", crew, "-member", carol)
	if strings.Contains(preview, "About Tools.") || !strings.Contains(preview, "About Seeds.") {
		t.Errorf("carol's digest should hold alice's post and not her own:\n%s", preview)
	}
	ts.mustCLI(t, "digest", "send", "-now")
	for _, m := range mailsTo(t, ts, sink, carol) {
		if strings.Contains(text(t, m), "digest") && strings.Contains(text(t, m), "About Tools.") {
			t.Errorf("carol's digest holds her own post")
		}
	}
	// Alice wants hers back.
	ts.mustCLI(t, "member", "set", crew, alice, "-own-posts")
	if err := send(t, ts.SMTPAddr, alice, []string{crew}, post(alice, "Rain", "rain@example.test", "Rain.\r\n")); err != nil {
		t.Fatal(err)
	}
	back := false
	for _, m := range mailsTo(t, ts, sink, alice) {
		back = back || strings.Contains(string(m.Data), "Message-ID: <rain@example.test>")
	}
	if !back {
		t.Error("alice did not get her own post back after -own-posts")
	}
}

// TestPauseUntilADate: a member pauses her mail until a date (crew+pause@ with the date in
// the subject, "pause 3 days" to crew-request@, or crew+pause@ alone for a week, confirmed by
// reply when her address is not proven). While paused nothing goes to her, neither posts nor
// digests; when the date comes her mail starts again by itself, beginning with a catch-up
// digest of what she missed, the conversations she took part in first.
func TestPauseUntilADate(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	const alice, bob, carol, dave = "alice@example.test", "bob@example.test", "carol@example.test", "dave@example.test"
	ts := newCrew(t, sink, alice, bob, carol, dave)
	ts.mustCLI(t, "member", "mode", crew, carol, "daily")
	postAs := func(from, subject, id, parent string) {
		t.Helper()
		msg := post(from, subject, id, "text of "+id+"\r\n")
		if parent != "" {
			msg = append([]byte("In-Reply-To: <"+parent+">\r\n"), msg...)
		}
		if err := send(t, ts.SMTPAddr, from, []string{crew}, msg); err != nil {
			t.Fatal(err)
		}
		settle(t, ts)
	}
	postAs(bob, "Tools", "tools@example.test", "") // a conversation bob took part in
	n := len(sink.Messages())
	pauseAddr := "crew+pause@" + testDomain
	until := ts.clock.Now().UTC().Add(10 * 24 * time.Hour).Format("2006-01-02")
	msg := fmt.Appendf(nil, "From: %s\r\nTo: %s\r\nSubject: until %s\r\nMessage-ID: <p1@client.example.test>\r\n\r\nOn holiday!\r\n", bob, pauseAddr, until)
	if err := send(t, ts.SMTPAddr, bob, []string{pauseAddr}, msg); err != nil {
		t.Fatal(err)
	}
	n++
	expect(t, sink, n, bob, "No mail from Garden crew until", "resume")
	if err := ask(t, ts, carol, "crew-request@"+testDomain, "pause 3 days\r\n", true); err != nil {
		t.Fatal(err)
	}
	n++
	among(t, sink, n-1, n, carol, "pause: no mail until")
	settle(t, ts)
	n = len(sink.Messages())
	if err := ask(t, ts, alice, pauseAddr, "", false); err != nil { // not proven: confirm first
		t.Fatal(err)
	}
	n++
	c := expect(t, sink, n, alice, "Confirm: no mail")
	if err := answer(t, ts, c, thunderbirdReply, alice, "Yes", false); err != nil {
		t.Fatal(err)
	}
	settle(t, ts)
	var paused bool
	for _, m := range mailsTo(t, ts, sink, alice) {
		paused = paused || strings.Contains(text(t, m), "No mail from Garden crew until")
	}
	if !paused {
		t.Fatal("alice's pause was not confirmed")
	}

	// While they are away: nothing to them, not even carol's digest.
	n = len(sink.Messages())
	postAs(dave, "Re: Tools", "tools-2@example.test", "tools@example.test")
	postAs(dave, "Seeds", "seeds@example.test", "")
	ts.mustCLI(t, "digest", "send", "-now")
	settle(t, ts)
	for _, m := range sink.Messages()[n:] {
		if m.To[0] != dave {
			t.Errorf("mail to %s while away:\n%s", m.To[0], text(t, m))
		}
	}
	// Eleven days on, everyone is back, each with a catch-up digest; bob's has Tools first.
	ts.clock.Advance(11 * 24 * time.Hour)
	n = len(sink.Messages())
	if _, err := ts.digests.SendDue("", true); err != nil { // the server's own round, on its clock
		t.Fatal(err)
	}
	settle(t, ts)
	catchups := map[string]string{}
	for _, m := range sink.Messages()[n:] {
		if txt := text(t, m); strings.Contains(txt, "While you were away") {
			catchups[m.To[0]] = txt
		}
	}
	for _, who := range []string{alice, bob, carol} {
		txt, ok := catchups[who]
		if !ok {
			t.Errorf("no catch-up digest for %s", who)
			continue
		}
		if !strings.Contains(txt, "text of tools-2") || !strings.Contains(txt, "text of seeds") {
			t.Errorf("%s's catch-up misses a post:\n%s", who, txt)
		}
	}
	if txt := catchups[bob]; strings.Index(txt, "text of tools-2") > strings.Index(txt, "text of seeds") {
		t.Errorf("bob's catch-up does not put his conversation first:\n%s", txt)
	}
	n = len(sink.Messages())
	postAs(dave, "Rain", "rain@example.test", "")
	for _, who := range []string{alice, bob} {
		if !slices.ContainsFunc(sink.Messages()[n:], func(m mailtest.Message) bool { return m.To[0] == who }) {
			t.Errorf("%s gets no posts after her pause ended", who)
		}
	}
}
