package main

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
	"github.com/emersion/go-smtp"

	"crewmail/internal/mailtest"
	"crewmail/lists"
	"crewmail/store"
	"crewmail/verify"
)

// TestCorpusPostsArriveUnchanged posts every message of the corpus's threads/ and mime/ from its
// author, a member, and checks that each reaches the members with everything the author wrote
// unchanged. Automatic mail (Auto-Submitted, RFC 3834) is refused instead.
func TestCorpusPostsArriveUnchanged(t *testing.T) {
	files := mailtest.Corpus(t, "threads", "mime")
	if len(files) < 300 {
		t.Fatalf("found %d corpus messages, expected the 309 of threads/ and mime/", len(files))
	}
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink, "reader@example.test")
	// The corpus's authors' keys are long gone: this checks the path, not the authentication.
	ts.mustCLI(t, "list", "set", crew, "-post", "members")

	type sent struct {
		name string
		data []byte
	}
	var want []sent
	seen := map[string]bool{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		msg := mailtest.SMTPForm(raw)
		th, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(bytes.TrimLeft(msg, " \t\r\n"))))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if !th.Has("From") {
			// As a submission agent would, give a message without an author one (RFC 6409 §8.1).
			msg = append([]byte("From: poster@elsewhere.example\r\n"), msg...)
			th.Add("From", "poster@elsewhere.example")
		}
		name := filepath.Base(filepath.Dir(f)) + "/" + filepath.Base(f)
		h := mail.Header{Header: message.Header{Header: th}}
		from, err := h.AddressList("From")
		if err != nil {
			from, err = mail.ParseAddressList(strings.ToValidUTF8(th.Get("From"), "?"))
		}
		if err != nil || len(from) != 1 {
			// A From that does not parse (a list archive's "user at example.org") names no
			// member: refused, never guessed at.
			err := send(t, ts.SMTPAddr, "reader@example.test", []string{crew}, msg)
			if got := smtpCode(err); got != "550 5.7.1" {
				t.Errorf("%s (unparsable From %q): reply %s, want 550 5.7.1", name, th.Get("From"), got)
			}
			t.Logf("%s: refused, From %q names no address", name, th.Get("From"))
			continue
		}
		author, err := lists.ParseAddress(from[0].Address)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if _, errOut, code := ts.cli(t, "member", "add", crew, author, "-mode", "nomail"); code != 0 && !strings.Contains(errOut, "already a member") {
			t.Fatalf("add %s: %s", author, errOut)
		}
		err = send(t, ts.SMTPAddr, author, []string{crew}, msg)
		if auto := th.Get("Auto-Submitted"); auto != "" && !strings.EqualFold(auto, "no") {
			if got := smtpCode(err); got != "550 5.7.1" {
				t.Errorf("%s (Auto-Submitted: %s): reply %s, want 550 5.7.1", name, auto, got)
			}
			t.Logf("%s: refused, Auto-Submitted: %s", name, auto)
			continue
		}
		if f := doubledField(th); f != "" {
			// RFC 5322 §3.6 allows it once; two different values are refused (an old
			// message whose relay added a second Date).
			if got := smtpCode(err); got != "550 5.7.1" {
				t.Errorf("%s (two different %s fields): reply %s, want 550 5.7.1", name, f, got)
			}
			t.Logf("%s: refused, two different %s fields", name, f)
			continue
		}
		if err != nil {
			t.Errorf("%s: refused: %v", name, err)
			continue
		}
		id, _ := h.MessageID()
		if id != "" && seen[id] {
			t.Logf("%s: Message-ID <%s> seen before: acknowledged, not sent again", name, id)
			continue
		}
		seen[id] = true
		// Unchanged but for the Authentication-Results fields of others, which are removed
		// before members see them (no relay is trusted here).
		kept, _ := verify.FilterResults(msg, func(string) bool { return false })
		want = append(want, sent{name, kept})
	}
	got := sink.Wait(t, len(want))
	if len(got) != len(want) {
		t.Errorf("reader got %d copies, want %d", len(got), len(want))
	}
	for _, w := range want {
		found := false
		for _, g := range got {
			if bytes.HasSuffix(g.Data, w.data) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("%s: no copy carries the message unchanged", w.name)
		}
	}
	t.Logf("%d corpus messages posted, %d delivered unchanged", len(files), len(want))
}

// TestCorpusMalformedAnswered posts every broken or hostile message of the corpus's malformed/
// as a member would: each gets a clear SMTP answer (250, or a refusal with an enhanced status
// code and a sentence); each one accepted is archived byte for byte and reaches the members.
func TestCorpusMalformedAnswered(t *testing.T) {
	files := mailtest.Corpus(t, "malformed")
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink, "reader@example.test")
	ts.mustCLI(t, "list", "set", crew, "-post", "anyone")
	accepted := map[string][]byte{}
	codes := map[string]int{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		msg := mailtest.SMTPForm(raw)
		name := filepath.Base(f)
		c, err := smtp.Dial(ts.SMTPAddr)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Hello("client.example.test"); err != nil {
			t.Fatal(err)
		}
		err = c.SendMail("reader@example.test", []string{crew}, bytes.NewReader(msg))
		c.Close()
		code := smtpCode(err)
		codes[code[:3]]++
		var se *smtp.SMTPError
		switch {
		case err == nil:
			// As sent, less the Authentication-Results fields of others (removed on arrival).
			accepted[name], _ = verify.FilterResults(msg, func(string) bool { return false })
		case errors.As(err, &se) && se.Code >= 500 && se.EnhancedCode[0] == 5 && len(se.Message) > 10:
			t.Logf("%s: %d %v %s", name, se.Code, se.EnhancedCode, se.Message)
		default:
			t.Errorf("%s: no clear answer: %v", name, err)
		}
	}
	settle(t, ts)
	// Every accepted message is in the archive as sent, below crewmail's own fields.
	var archived [][]byte
	err := ts.st.View(func(tx store.Tx) error {
		return tx.PostsAfter(crew, 0, func(_ store.Post, raw []byte) error {
			archived = append(archived, raw)
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	delivered := sink.Messages()
	for name, msg := range accepted {
		inArchive, inMail := false, false
		for _, a := range archived {
			inArchive = inArchive || bytes.HasSuffix(a, msg)
		}
		for _, d := range delivered {
			inMail = inMail || bytes.HasSuffix(d.Data, msg)
		}
		// A second message with a Message-ID seen before is acknowledged, not archived again.
		if !inArchive && !sharesID(msg, accepted) {
			t.Errorf("%s: accepted but not archived as sent", name)
		}
		if inArchive && !inMail {
			t.Errorf("%s: archived but not delivered unchanged", name)
		}
	}
	t.Logf("%d malformed messages: answers %v; %d archived and delivered", len(files), codes, len(archived))
}

// doubledField names a field allowed once that th has twice with different values, "" when
// none.
func doubledField(th textproto.Header) string {
	for _, f := range []string{"Sender", "Reply-To", "To", "Cc", "Subject", "Message-ID", "Date", "MIME-Version", "Content-Type"} {
		vs := th.Values(f)
		for _, v := range vs[min(1, len(vs)):] {
			if strings.Join(strings.Fields(v), " ") != strings.Join(strings.Fields(vs[0]), " ") {
				return f
			}
		}
	}
	return ""
}

var msgIDLine = regexp.MustCompile(`(?mi)^Message-Id:\s*(<[^>\r\n]*>)`)

// sharesID reports whether msg has the Message-ID of another message in others.
func sharesID(msg []byte, others map[string][]byte) bool {
	id := msgIDLine.FindSubmatch(msg)
	if id == nil {
		return false
	}
	for _, o := range others {
		if oid := msgIDLine.FindSubmatch(o); oid != nil && !bytes.Equal(o, msg) && bytes.Equal(oid[1], id[1]) {
			return true
		}
	}
	return false
}
