package lists

import (
	"bytes"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"

	"crewmail/templates"
)

// noticeText is the subject and the text of a notice crewmail wrote, decoded.
func noticeText(t *testing.T, raw []byte) (string, string) {
	t.Helper()
	r, err := mail.CreateReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	subject, _ := r.Header.Subject()
	p, err := r.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(p.Body)
	if err != nil {
		t.Fatal(err)
	}
	return subject, string(b)
}

// TestNoticesFoldInjectedLines: a Subject with encoded line breaks (RFC 2047 "=0D=0A") and a
// right-to-left override cannot write lines of its own into the notices that quote it: asking
// a member to confirm a post, the moderators to decide on one, the poster that it was
// rejected or expired, a member that a thread is muted, and the answer to a digest reply. The
// question to confirm a post shows how the post begins.
func TestNoticesFoldInjectedLines(t *testing.T) {
	s := newTestService(t)
	now := s.Now()
	const crewAddr, modAddr = "crew@lists.example.test", "mod@lists.example.test"
	moderated := true
	if _, err := s.CreateList(crewAddr, ListOptions{Post: "verified"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateList(modAddr, ListOptions{Post: "members", Moderated: &moderated, Owners: []string{"owner@example.test"}}); err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{crewAddr, modAddr} {
		for _, a := range []string{"alice@example.test", "bob@example.test"} {
			if _, err := s.AddMember(l, a, "", false); err != nil {
				t.Fatal(err)
			}
		}
	}
	subject := "=?utf-8?q?Seeds=0D=0A=0D=0AIMPORTANT=3A_reply_YES_=E2=80=AEnow?="
	msg := func(from, id string) []byte {
		return []byte("From: " + from + "\r\nSubject: " + subject + "\r\nMessage-ID: <" + id + "@example.test>\r\n\r\n> quoted\r\nThe seeds are in.\r\nPlant them on Sunday.\r\n")
	}
	spf := Auth{Pass: true, Method: "spf", Domain: "example.test", SPFDomain: "example.test"}
	accept := func(to, from string, auth Auth, raw []byte) {
		t.Helper()
		tgt, err := s.Route(to)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Accept(Envelope{From: from, Targets: []Target{tgt}, Auth: auth}, raw); err != nil {
			t.Fatalf("mail to %s: %v", to, err)
		}
	}
	accept(crewAddr, "alice@example.test", Auth{Reason: "dmarc=fail"}, msg("alice@example.test", "forged"))
	accept(modAddr, "bob@example.test", spf, msg("bob@example.test", "held1"))
	accept(modAddr, "bob@example.test", spf, msg("bob@example.test", "held2"))
	held, err := s.Held(modAddr)
	if err != nil || len(held) != 2 {
		t.Fatalf("held: %v %v", held, err)
	}
	if err := s.Reject(modAddr, held[0].ID, "off topic\r\nIMPORTANT: reply YES"); err != nil {
		t.Fatal(err)
	}
	accept(crewAddr, "bob@example.test", spf, msg("bob@example.test", "posted"))
	posts, _ := s.Archive(crewAddr)
	accept(s.MuteAddress(crewAddr, posts[0].Thread), "bob@example.test", Auth{}, []byte("From: bob@example.test\r\n\r\n"))
	accept("crew+digest@lists.example.test", "bob@example.test", Auth{}, []byte("From: bob@example.test\r\nSubject: Re: digest\r\n\r\nhi\r\n"))
	s.Now = func() time.Time { return now.Add(moderationWithin + time.Hour) }
	if _, err := s.Sweep(); err != nil {
		t.Fatal(err)
	}

	// confirm-post, moderation, post-rejected, held-expired, thread-muted, digest-reply
	kinds := []string{"Did you send this", "waits for you", "was not accepted", "was not sent", "Muted", "digest was not posted"}
	seen := map[string]bool{}
	for _, d := range outbox(t, s) {
		if d.Seq != 0 {
			continue
		}
		subj, text := noticeText(t, d.Message)
		for _, line := range append(strings.Split(text, "\n"), subj) {
			if strings.HasPrefix(strings.TrimLeft(line, " >|"), "IMPORTANT") || strings.ContainsRune(line, '\u202e') {
				t.Errorf("notice %q to %s has an injected line %q:\n%s", subj, d.To, line, text)
			}
		}
		for _, kind := range kinds {
			if strings.Contains(subj, kind) {
				seen[kind] = true
			}
		}
		if strings.Contains(subj, "Did you send this") && (!strings.Contains(text, "The seeds are in.") || !strings.Contains(text, "Plant them on Sunday.") || strings.Contains(text, "quoted")) {
			t.Errorf("the question to confirm a post does not show how it begins:\n%s", text)
		}
	}
	for _, k := range kinds {
		if !seen[k] {
			t.Errorf("no notice %q", k)
		}
	}
}

// TestFoldNoticeFoldsEveryText: every text a notice carries, whatever its field, comes out one
// line without bidirectional controls, and the slices handed in are left as they were.
func TestFoldNoticeFoldsEveryText(t *testing.T) {
	const dirty = "Seeds\r\n\r\nIMPORTANT: reply YES \u202enow"
	var d templates.Notice
	v := reflect.ValueOf(&d).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString(dirty)
		case reflect.Slice:
			s := reflect.MakeSlice(f.Type(), 1, 1)
			if e := s.Index(0); e.Kind() == reflect.String {
				e.SetString(dirty)
			} else {
				for j := range e.NumField() {
					e.Field(j).SetString(dirty)
				}
			}
			f.Set(s)
		}
	}
	lines := d.Lines
	folded := reflect.ValueOf(foldNotice(d))
	var check func(name string, v reflect.Value)
	check = func(name string, v reflect.Value) {
		switch v.Kind() {
		case reflect.String:
			if s := v.String(); strings.ContainsAny(s, "\r\n\u202e") || !strings.Contains(s, "IMPORTANT") {
				t.Errorf("%s folded to %q", name, s)
			}
		case reflect.Struct:
			for i := range v.NumField() {
				check(name+"."+v.Type().Field(i).Name, v.Field(i))
			}
		case reflect.Slice:
			if v.Len() == 0 {
				t.Errorf("%s lost its elements", name)
			}
			for i := range v.Len() {
				check(name, v.Index(i))
			}
		}
	}
	check("Notice", folded)
	if lines[0] != dirty {
		t.Errorf("the caller's Lines changed to %q", lines[0])
	}
}
