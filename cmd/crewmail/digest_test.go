package main

import (
	"bytes"
	"html"
	"io"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/emersion/go-message/mail"

	"crewmail/internal/mailtest"
)

// digestParts returns the text and HTML parts of a digest mail.
func digestParts(t *testing.T, m mailtest.Message) (text, html string) {
	t.Helper()
	r, err := mail.CreateReader(bytes.NewReader(m.Data))
	if err != nil {
		t.Fatal(err)
	}
	for {
		p, err := r.NextPart()
		if err == io.EOF {
			return text, html
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p.Body)
		switch ct := p.Header.Get("Content-Type"); {
		case strings.HasPrefix(ct, "text/plain"):
			text = string(b)
			if strings.Contains(ct, "format=flowed") {
				text = string(unflow([]byte(text), strings.Contains(ct, "delsp=yes")))
			}
		case strings.HasPrefix(ct, "text/html"):
			html = string(b)
		}
	}
}

var replyLinkRE = regexp.MustCompile(`mailto:(crew\+r-[a-z2-7]+@` + regexp.QuoteMeta(testDomain) + `)\?subject=([^\s"<>]+)`)

// TestDigestReplyLinkThreads: posts in, `digest send -now`, the digest arrives with a Reply link
// per message; an answer sent to a Reply link from a client that sets no In-Reply-To is
// archived in the right thread and reaches each-mode members with In-Reply-To set; a reply to
// the digest itself is not posted.
func TestDigestReplyLinkThreads(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink, "alice@example.test", "bob@example.test")
	ts.mustCLI(t, "member", "mode", crew, "bob@example.test", "daily")

	for _, p := range []struct{ subject, id, reply string }{
		{"Seeds", "seeds@example.test", ""},
		{"Tomatoes", "tomatoes@example.test", ""},
	} {
		if err := send(t, ts.SMTPAddr, "alice@example.test", []string{crew}, post("alice@example.test", p.subject, p.id, "About "+p.subject+".\r\n")); err != nil {
			t.Fatal(err)
		}
	}
	sink.Wait(t, 2) // alice's copies
	settle(t, ts)
	if out := ts.mustCLI(t, "digest", "preview", crew, "-member", "bob@example.test"); !strings.Contains(out, "About Seeds.") || !strings.Contains(out, "About Tomatoes.") {
		t.Fatalf("preview:\n%s", out)
	}
	if out := ts.mustCLI(t, "digest", "send", "-now"); !strings.Contains(out, "sent 1 digests to 1 members (2 messages)") {
		t.Fatalf("digest send: %s", out)
	}
	d := expect(t, sink, 3, "bob@example.test", "Daily digest: 2 conversations, 2 messages", "Reply-To: <crew+digest@"+testDomain+">",
		"List-Unsubscribe: <http://"+ts.HTTPAddr+"/u/", "List-Unsubscribe-Post: List-Unsubscribe=One-Click")
	text, page := digestParts(t, d)
	page = html.UnescapeString(page)
	if !strings.Contains(page, "mailto:crew+r-") || strings.Contains(page, "http://") || strings.Contains(page, "https://") {
		t.Errorf("HTML part: links\n%s", page)
	}
	// The HTML part's Reply links carry the subject; the text part gives the bare address.
	var seedsLink string
	for _, m := range replyLinkRE.FindAllStringSubmatch(page, -1) {
		if subj, _ := url.QueryUnescape(m[2]); subj == "Re: Seeds" {
			seedsLink = m[1]
		}
	}
	if seedsLink == "" {
		t.Fatalf("no Reply link for Seeds in:\n%s", page)
	}
	if !strings.Contains(text, "Reply: "+seedsLink+"\r\n") && !strings.Contains(text, "Reply: "+seedsLink+"\n") {
		t.Errorf("no Reply line with the bare address %s in the text part:\n%s", seedsLink, text)
	}
	if out := ts.mustCLI(t, "digest", "send", "-now"); !strings.Contains(out, "sent 0 digests") {
		t.Errorf("a second send repeated the digest: %s", out)
	}

	// Bob answers through the link, from a client that sets no In-Reply-To.
	answer := []byte("From: bob@example.test\r\nTo: " + seedsLink + "\r\nSubject: Re: Seeds\r\nMessage-ID: <bob-answer@example.test>\r\n\r\nPlant them in March.\r\n")
	if err := send(t, ts.SMTPAddr, "bob@example.test", []string{seedsLink}, answer); err != nil {
		t.Fatalf("reply link: %v", err)
	}
	copyToAlice := expect(t, sink, 4, "alice@example.test", "In-Reply-To: <seeds@example.test>", "Plant them in March.")
	if !bytes.HasSuffix(copyToAlice.Data, answer) {
		t.Errorf("the answer is not carried unchanged below the added fields:\n%s", copyToAlice.Data)
	}
	arch := ts.mustCLI(t, "archive", "ls", crew, "-json")
	if !strings.Contains(arch, `"message_id":"bob-answer@example.test","thread":1,`) {
		t.Errorf("the answer is not in the Seeds thread:\n%s", arch)
	}

	// A reply to the whole digest is answered with the links, never posted.
	whole := []byte("From: bob@example.test\r\nTo: crew+digest@" + testDomain + "\r\nSubject: Re: [Garden crew] Daily digest\r\nMessage-ID: <whole@example.test>\r\n\r\nThanks!\r\n\r\n> " + strings.ReplaceAll(strings.ReplaceAll(text[:200], "\r\n", "\n"), "\n", "\r\n> ") + "\r\n")
	if err := send(t, ts.SMTPAddr, "bob@example.test", []string{"crew+digest@" + testDomain}, whole); err != nil {
		t.Fatal(err)
	}
	note := expect(t, sink, 5, "bob@example.test", "was not posted", "Seeds", "crew+r-")
	if !bytes.Contains(note.Data, []byte("Thanks!")) {
		t.Errorf("the sender's text is not returned:\n%s", note.Data)
	}
	if arch := ts.mustCLI(t, "archive", "ls", crew); strings.Contains(arch, "whole@") {
		t.Errorf("the reply to the digest was archived:\n%s", arch)
	}
}

// TestMuteByMail: a member mutes a thread from its Mute link; posts in it no longer reach them;
// unmute brings them back.
func TestMuteByMail(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink, "alice@example.test", "bob@example.test")
	ts.mustCLI(t, "member", "mode", crew, "bob@example.test", "daily")
	if err := send(t, ts.SMTPAddr, "alice@example.test", []string{crew}, post("alice@example.test", "Noise", "noise@example.test", "x\r\n")); err != nil {
		t.Fatal(err)
	}
	sink.Wait(t, 1)
	settle(t, ts)
	ts.mustCLI(t, "digest", "send", "-now")
	d := expect(t, sink, 2, "bob@example.test", "Noise")
	text, _ := digestParts(t, d)
	mute := regexp.MustCompile(`crew\+mute-[a-z2-7]+@` + regexp.QuoteMeta(testDomain)).FindString(text)
	if mute == "" {
		t.Fatalf("no Mute link:\n%s", text)
	}
	ts.mustCLI(t, "member", "mode", crew, "bob@example.test", "each")
	if err := ask(t, ts, "bob@example.test", mute, "", true); err != nil {
		t.Fatal(err)
	}
	expect(t, sink, 3, "bob@example.test", "Muted: Noise", "crew+unmute-")
	reply := []byte("From: alice@example.test\r\nTo: " + crew + "\r\nSubject: Re: Noise\r\nIn-Reply-To: <noise@example.test>\r\nMessage-ID: <noise2@example.test>\r\n\r\nmore\r\n")
	if err := send(t, ts.SMTPAddr, "alice@example.test", []string{crew}, reply); err != nil {
		t.Fatal(err)
	}
	if m := expect(t, sink, 4, "alice@example.test", "more"); m.Data == nil {
		t.Fatal("no copy")
	}
	settle(t, ts)
	if n := len(sink.Messages()); n != 4 {
		t.Errorf("the muted thread still reached bob: %d mails", n)
	}
}
