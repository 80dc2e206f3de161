package lists

import (
	"fmt"
	"testing"
)

// TestForgedHelpLeavesProvenAnswers: a forger using up the answers an address may get in an
// hour does not silence the address's own proven mail.
func TestForgedHelpLeavesProvenAnswers(t *testing.T) {
	s := newTestService(t)
	if _, err := s.CreateList("crew@lists.example.test", ListOptions{}); err != nil {
		t.Fatal(err)
	}
	help, _ := s.Route("crew+help@lists.example.test")
	ask := func(i int, proven bool) int {
		t.Helper()
		msg := fmt.Appendf(nil, "From: alice@example.test\r\nMessage-ID: <h%d@example.test>\r\n\r\nhelp\r\n", i)
		res, err := s.Accept(Envelope{From: "alice@example.test", Targets: []Target{help}, Auth: Auth{Pass: proven}}, msg)
		if err != nil {
			t.Fatal(err)
		}
		return res.Queued
	}
	queued := 0
	for i := range 10 {
		queued += ask(i, false)
	}
	if queued != unprovenAnswersPerHour {
		t.Errorf("10 forged mails made %d answers, want %d", queued, unprovenAnswersPerHour)
	}
	queued = 0
	for i := range 10 {
		queued += ask(100+i, true)
	}
	if want := answersPerHour - unprovenAnswersPerHour; queued != want {
		t.Errorf("10 proven mails after them made %d answers, want %d", queued, want)
	}
}

func TestDisownsReadsNo(t *testing.T) {
	for body, want := range map[string]bool{
		"yes\r\n":                            false,
		"\r\n":                               false,
		"Yes, I sent it.\r\n":                false,
		"ok\r\n":                             false,
		"No, that was not me!\r\n":           true,
		"no\r\n":                             true,
		"Nope.\r\n":                          true,
		"That wasn’t me\r\n":                 true,
		"I did not send this\r\n":            true,
		"Not me, someone forged it\r\n":      true,
		"Sent it from my phone, sorry\r\n":   false,
		"Yes, I am not memorising these\r\n": false,
	} {
		m, err := parseMessage([]byte("From: alice@example.test\r\nSubject: Re: Did you send this?\r\n\r\n" + body + "\r\n> Did you send this?\r\n"))
		if err != nil {
			t.Fatal(err)
		}
		m.readBody([]Target{{Kind: KindConfirm}}, m.raw)
		if got := (&command{m: m}).disowns(); got != want {
			t.Errorf("reply %q disowns the post: %v, want %v", body, got, want)
		}
	}
}

// TestConfirmationAnsweredBeyondUnprovenBound: mail to a confirm address proves its sender
// holds the token mailed to them, so its answer is not held back by what others asked for in
// the address's name.
func TestConfirmationAnsweredBeyondUnprovenBound(t *testing.T) {
	s := newTestService(t)
	if _, err := s.CreateList("crew@lists.example.test", ListOptions{Join: "open"}); err != nil {
		t.Fatal(err)
	}
	accept := func(to string, i int) Result {
		t.Helper()
		tgt, err := s.Route(to)
		if err != nil {
			t.Fatal(err)
		}
		msg := fmt.Appendf(nil, "From: carol@example.test\r\nMessage-ID: <c%d@example.test>\r\n\r\nyes\r\n", i)
		res, err := s.Accept(Envelope{From: "carol@example.test", Targets: []Target{tgt}}, msg)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := accept("crew+subscribe@lists.example.test", 0); res.Queued != 1 {
		t.Fatalf("subscribe: %+v", res)
	}
	rows := outbox(t, s)
	confirm := confirmAddress(t, rows[0].Message)
	for i := range unprovenAnswersPerHour {
		accept("crew+help@lists.example.test", i+1)
	}
	if n := len(outbox(t, s)); n != unprovenAnswersPerHour {
		t.Fatalf("%d mails to carol, want %d", n, unprovenAnswersPerHour)
	}
	if res := accept(confirm, 9); res.Queued != 1 {
		t.Errorf("confirming made %d mails, want the welcome", res.Queued)
	}
}
