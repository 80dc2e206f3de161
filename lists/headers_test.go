package lists

import (
	"strings"
	"testing"

	"crewmail/internal/vocab"
)

// TestDoubledSingletonFieldRefused: a field RFC 5322 §3.6 (or RFC 2045) allows once, written
// twice with different values, is refused: a DKIM signature covers only the last one, readers
// show the first. The same field twice with the same value changes nothing anyone sees.
func TestDoubledSingletonFieldRefused(t *testing.T) {
	s := newTestService(t)
	if _, err := s.CreateList("crew@lists.example.test", ListOptions{Post: "anyone"}); err != nil {
		t.Fatal(err)
	}
	tgt, _ := s.Route("crew@lists.example.test")
	base := "From: alice@example.test\r\nTo: crew@lists.example.test\r\nSubject: Seeds\r\n" +
		"Date: Wed, 25 Nov 2026 10:00:00 +0000\r\nMessage-ID: <seeds@example.test>\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\ntext\r\n"
	for i, field := range []string{
		"Subject: Send your password to mallory@evil.test",
		"Message-ID: <replay@evil.test>",
		"Date: Thu, 26 Nov 2026 10:00:00 +0000",
		"To: other@lists.example.test",
		"Cc: other@lists.example.test",
		"Reply-To: mallory@evil.test",
		"Sender: mallory@evil.test",
		"MIME-Version: 2.0",
		"Content-Type: text/html",
	} {
		// Fields this message lacks appear twice only when added twice.
		msg := field + "\r\n" + base
		name, _, _ := strings.Cut(field, ":")
		if !strings.Contains(base, "\r\n"+name+":") && !strings.HasPrefix(base, name+":") {
			msg = field + "\r\n" + field + "x\r\n" + base
		}
		msg = strings.Replace(msg, "<seeds@", "<seeds"+string(rune('a'+i))+"@", 1)
		_, err := s.Accept(Envelope{From: "alice@example.test", Targets: []Target{tgt}}, []byte(msg))
		r, ok := IsRefusal(err)
		if !ok || r.Code != 550 || r.Enhanced != [3]int{5, 7, 1} || !strings.Contains(r.Message, name) {
			t.Errorf("doubled %s: %v, want 550 5.7.1 naming the field", name, err)
		}
	}
	for _, field := range []string{"In-Reply-To: <a@example.test>\r\nReferences: <a@example.test>\r\nIn-Reply-To: <b@example.test>\r\nReferences: <b@example.test>", "MIME-Version: 1.0", "Subject:  Seeds"} {
		msg := field + "\r\n" + base
		if _, err := s.Accept(Envelope{From: "alice@example.test", Targets: []Target{tgt}}, []byte(strings.Replace(msg, "<seeds@", "<"+field[:4]+"@", 1))); err != nil {
			t.Errorf("%q twice: %v, want it accepted", field, err)
		}
	}
}

// TestDKIMPassCountsOnlyForTheListsItNames: a DKIM pass proves a post to the lists whose
// address (or Reply address) the signed To or Cc names; elsewhere an aligned SPF pass still
// proves it, or nothing does.
func TestDKIMPassCountsOnlyForTheListsItNames(t *testing.T) {
	dkim := Auth{Pass: true, Method: "dkim", Domain: "example.test", DKIMAligned: true,
		DKIMRecipients: []string{"Garden crew <x>", "CREW@Lists.Example.Test", "seeds+r-abc@lists.example.test"}}
	for _, tc := range []struct {
		list       string
		spf        string
		pass       bool
		method     vocab.Verified
		reasonPart string
	}{
		{"crew@lists.example.test", "", true, "dkim", ""},
		{"seeds@lists.example.test", "", true, "dkim", ""},
		{"council@lists.example.test", "", false, "", "other addresses than council@lists.example.test"},
		{"crew@elsewhere.test", "", false, "", "other addresses"},
		{"council@lists.example.test", "example.test", true, "spf", ""},
	} {
		a := dkim
		a.SPFDomain = tc.spf
		got := a.forPost(tc.list, "+")
		if got.Pass != tc.pass || got.Method != tc.method || !strings.Contains(got.Reason, tc.reasonPart) || !got.DKIMAligned {
			t.Errorf("%s (spf %q): %+v", tc.list, tc.spf, got)
		}
	}
	if got := (Auth{Pass: true, Method: "spf", Domain: "example.test"}).forPost("crew@lists.example.test", "+"); !got.Pass {
		t.Errorf("an SPF pass lost: %+v", got)
	}
}

// TestDKIMPassForACommandNamesItsAddress: mail to a command address is proven by DKIM only when
// the signed To or Cc names that address; the list's posting address is not enough.
func TestDKIMPassForACommandNamesItsAddress(t *testing.T) {
	signed := func(to ...string) Auth {
		return Auth{Pass: true, Method: "dkim", Domain: "example.test", DKIMRecipients: to}
	}
	const list = "crew@lists.example.test"
	for _, tc := range []struct {
		auth Auth
		t    Target
		want bool
	}{
		{signed("crew+nomail@lists.example.test"), Target{List: list, Kind: KindMode, Token: "nomail"}, true},
		{signed("Crew+NoMail@Lists.Example.Test"), Target{List: list, Kind: KindMode, Token: "nomail"}, true},
		{signed(list), Target{List: list, Kind: KindMode, Token: "nomail"}, false},
		{signed("crew+daily@lists.example.test"), Target{List: list, Kind: KindMode, Token: "nomail"}, false},
		{signed("crew-request@lists.example.test"), Target{List: list, Kind: KindRequest}, true},
		{signed(list), Target{List: list, Kind: KindRequest}, false},
		{signed("crew+password@lists.example.test"), Target{List: list, Kind: KindPassword}, true},
		{signed(list), Target{List: list, Kind: KindPassword}, false},
		{Auth{Pass: true, Method: "spf", Domain: "example.test"}, Target{List: list, Kind: KindPassword}, true},
		{Auth{Pass: true, Method: "dkim", Domain: "example.test", SPFDomain: "example.test"}, Target{List: list, Kind: KindPassword}, true},
	} {
		if got := tc.auth.forCommand(tc.t, "+"); got.Pass != tc.want {
			t.Errorf("%v for %+v: %+v, want Pass %v", tc.auth.DKIMRecipients, tc.t, got, tc.want)
		}
	}
}

// TestImportKeepsDoubledFields: an archive imported by the operator keeps what its list took
// then, also a message with a field written twice (a relay's second Date).
func TestImportKeepsDoubledFields(t *testing.T) {
	s := newTestService(t)
	if _, err := s.CreateList("crew@lists.example.test", ListOptions{}); err != nil {
		t.Fatal(err)
	}
	mbox := "From alice@example.test Tue Jun 19 01:16:04 2001\n" +
		"From: alice@example.test\nSubject: Old\nDate: Tue, 19 Jun 2001 01:16:04 +0800 (CST)\n" +
		"Date: Tue, 19 Jun 2001 01:04:22 +0800\nMessage-ID: <old@example.test>\n\nold text\n"
	res, err := s.Import("crew@lists.example.test", strings.NewReader(mbox), nil)
	if err != nil || res.Imported != 1 {
		t.Errorf("import: %+v %v", res, err)
	}
}
