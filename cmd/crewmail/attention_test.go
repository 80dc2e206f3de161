package main

import (
	"fmt"
	"strings"
	"testing"

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
