package lists

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"crewmail/store"
)

func outbox(t *testing.T, s *Service) []store.Delivery {
	t.Helper()
	var rows []store.Delivery
	if err := s.st.View(func(tx store.Tx) error {
		return tx.Outbox(func(d store.Delivery) error { rows = append(rows, d); return nil })
	}); err != nil {
		t.Fatal(err)
	}
	return rows
}

// confirmAddress finds the confirm address in a notice.
func confirmAddress(t *testing.T, msg []byte) string {
	t.Helper()
	for _, line := range strings.Split(string(msg), "\r\n") {
		if v, ok := strings.CutPrefix(line, "Reply-To: "); ok {
			return strings.Trim(v, "<>")
		}
	}
	t.Fatalf("no Reply-To in\n%s", msg)
	return ""
}

func TestVerifiedPolicyHoldsUnverifiedPosts(t *testing.T) {
	s := newTestService(t)
	now := s.Now()
	if _, err := s.CreateList("crew@lists.example.test", ListOptions{Post: "verified"}); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"alice@example.test", "bob@example.test"} {
		if _, err := s.AddMember("crew@lists.example.test", a, "", false); err != nil {
			t.Fatal(err)
		}
	}
	crew, _ := s.Route("crew@lists.example.test")
	msg := func(id string) []byte {
		return []byte("From: alice@example.test\r\nSubject: Seeds\r\nMessage-ID: <" + id + "@example.test>\r\n\r\nhi\r\n")
	}

	// Verified: straight to the list, recorded as such.
	res, err := s.Accept(Envelope{From: "alice@example.test", Targets: []Target{crew}, Auth: Auth{Pass: true, Method: "dkim", Domain: "example.test", DKIMRecipients: []string{"crew@lists.example.test"}, Header: "Authentication-Results: lists.example.test; dmarc=pass\r\n"}}, msg("v"))
	if err != nil || len(res.Posts) != 1 || res.Posts[0].Verified != "dkim" || res.Queued != 2 {
		t.Fatalf("verified post: %+v %v", res, err)
	}

	// Not verified (a stranger's server): held; only alice, at her address on file, is asked.
	res, err = s.Accept(Envelope{From: "alice@example.test", Targets: []Target{crew}, Auth: Auth{Reason: "dmarc=fail"}}, msg("forged"))
	if err != nil || len(res.Posts) != 0 || res.Held != 1 || res.Queued != 1 {
		t.Fatalf("unverified post: %+v %v", res, err)
	}
	rows := outbox(t, s)
	ask := rows[len(rows)-1]
	if ask.To != "alice@example.test" || ask.Seq != 0 || bytes.Contains(ask.Message, []byte("dmarc")) || !bytes.Contains(ask.Message, []byte("We could not check that this came from you")) || !bytes.Contains(ask.Message, []byte("Seeds")) {
		t.Fatalf("confirmation: %+v\n%s", ask, ask.Message)
	}
	confirm := confirmAddress(t, ask.Message)
	if unfolded := bytes.ReplaceAll(ask.Message, []byte("\r\n "), []byte(" ")); !bytes.HasPrefix(unfolded, []byte(`From: "crew" <`+confirm+">\r\n")) {
		t.Errorf("the question does not come from its confirm address (a reply must reach it):\n%s", ask.Message)
	}

	// Alice replies: the post goes to the list, marked confirmed.
	tgt, err := s.Route(confirm)
	if err != nil {
		t.Fatal(err)
	}
	res, err = s.Accept(Envelope{From: "alice@example.test", Targets: []Target{tgt}}, []byte("From: alice@example.test\r\nSubject: Re: Did you send this\r\n\r\n> quoted\r\nyes\r\n"))
	if err != nil || len(res.Posts) != 1 || res.Posts[0].Verified != "confirmed" || res.Posts[0].MessageID != "forged@example.test" || res.Queued != 2 {
		t.Fatalf("confirmed: %+v %v", res, err)
	}
	// Twice is harmless.
	if res, err = s.Accept(Envelope{From: "x@example.test", Targets: []Target{tgt}}, []byte("From: x@example.test\r\n\r\n")); err != nil || len(res.Posts) != 0 {
		t.Errorf("second confirmation: %+v %v", res, err)
	}

	// A forger cannot make crewmail mail a member without end.
	for i := range maxHeldPerSender {
		if _, err := s.Accept(Envelope{From: "x@evil.test", Targets: []Target{crew}}, msg("f"+string(rune('a'+i)))); err != nil {
			t.Fatalf("held %d: %v", i, err)
		}
	}
	_, err = s.Accept(Envelope{From: "x@evil.test", Targets: []Target{crew}}, msg("one-too-many"))
	if r, ok := IsRefusal(err); !ok || r.Code != 550 {
		t.Errorf("post beyond %d waiting: %v", maxHeldPerSender, err)
	}

	// Unconfirmed posts expire.
	s.Now = func() time.Time { return now.Add(8 * 24 * time.Hour) }
	if n, err := s.Sweep(); err != nil || n != maxHeldPerSender {
		t.Errorf("Sweep = %d, %v; want %d", n, err, maxHeldPerSender)
	}
	posts, _ := s.Archive("crew@lists.example.test")
	if len(posts) != 2 {
		t.Errorf("archive holds %d posts, want the verified and the confirmed one", len(posts))
	}
}

// TestRejectedPostGoesBackOnlyToAProvenAuthor: a moderator's "no" gives a post back to its
// author, attached, when the author was proven; a post sent under a member's address without
// proof is never mailed to that address (it may be a forger's text), only the notice is.
func TestRejectedPostGoesBackOnlyToAProvenAuthor(t *testing.T) {
	s := newTestService(t)
	const list = "mod@lists.example.test"
	moderated := true
	if _, err := s.CreateList(list, ListOptions{Post: "members", Moderated: &moderated, Owners: []string{"owner@example.test"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddMember(list, "alice@example.test", "", false); err != nil {
		t.Fatal(err)
	}
	target, _ := s.Route(list)
	post := func(id string) []byte {
		return []byte("From: alice@example.test\r\nSubject: Raffle " + id + "\r\nMessage-ID: <" + id + "@example.test>\r\n\r\nTickets at the gate, text " + id + ".\r\n")
	}
	for _, c := range []struct {
		id     string
		auth   Auth
		attach bool
	}{{"proven", Auth{Pass: true, Method: "dkim", Domain: "example.test", DKIMRecipients: []string{list}}, true}, {"unproven", Auth{Reason: "dmarc=fail"}, false}} {
		if _, err := s.Accept(Envelope{From: "alice@example.test", Targets: []Target{target}, Auth: c.auth}, post(c.id)); err != nil {
			t.Fatal(err)
		}
		held, err := s.Held(list)
		if err != nil || len(held) != 1 {
			t.Fatalf("held: %v %v", held, err)
		}
		if err := s.Reject(list, held[0].ID, "No raffles."); err != nil {
			t.Fatal(err)
		}
		rows := outbox(t, s)
		last := rows[len(rows)-1]
		subject, text := noticeText(t, last.Message)
		if last.To != "alice@example.test" || !strings.Contains(subject, "not accepted: Raffle "+c.id) {
			t.Fatalf("%s: the last mail went to %s: %q", c.id, last.To, subject)
		}
		attached := bytes.Contains(last.Message, []byte("message/rfc822")) && bytes.Contains(last.Message, []byte("text "+c.id))
		if attached != c.attach || strings.Contains(text, "attached below") != c.attach {
			t.Errorf("%s author: post attached %v, want %v\n%s", c.id, attached, c.attach, last.Message)
		}
	}
}
