package main

import (
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"crewmail/internal/mailtest"
	"crewmail/store"
)

// TestBouncingMemberPaused: a member whose server refuses every copy is paused after three
// hard bounces over more than a week; the owners and the member are told; nothing goes to them
// until they ask for mail again. A DMARC refusal counts against the list, not the member. A
// delivery report to a member's bounce address counts; a vacation notice does not.
func TestBouncingMemberPaused(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	var refuseBob atomic.Bool
	refuseBob.Store(true)
	var bobVERP atomic.Value
	sink.Reject = func(m mailtest.Message) error {
		switch m.To[0] {
		case "bob@example.test":
			if strings.HasPrefix(m.From, "crew+bounces-") {
				bobVERP.Store(m.From)
			}
			if refuseBob.Load() {
				return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user here"}
			}
		case "dora@strict.test":
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "rejected per DMARC policy"}
		}
		return nil
	}
	ts := newCrew(t, sink, "alice@example.test", "bob@example.test", "dora@strict.test")
	ts.mustCLI(t, "list", "set", crew, "-owner", owner)
	n := 0
	postOne := func() {
		t.Helper()
		n++
		if err := send(t, ts.SMTPAddr, "alice@example.test", []string{crew}, post("alice@example.test", fmt.Sprint("Post ", n), fmt.Sprintf("p%d@example.test", n), "x\r\n")); err != nil {
			t.Fatal(err)
		}
		settle(t, ts)
	}
	memberLine := func(addr string) string {
		for _, l := range strings.Split(members(t, ts), "\n") {
			if strings.HasPrefix(l, addr) {
				return l
			}
		}
		return ""
	}
	postOne()
	if l := memberLine("bob@example.test"); !strings.Contains(l, "score 1 since") {
		t.Fatalf("after one bounce: %q", l)
	}
	ts.clock.Advance(4 * 24 * time.Hour)
	postOne()
	ts.clock.Advance(4 * 24 * time.Hour)
	postOne() // the third, eight days after the first: paused
	if l := memberLine("bob@example.test"); !strings.Contains(l, "paused since") {
		t.Fatalf("after three bounces over eight days: %q", l)
	}
	if l := memberLine("dora@strict.test"); strings.Contains(l, "score") || strings.Contains(l, "paused") {
		t.Errorf("DMARC refusals held against the member: %q", l)
	}
	if out := ts.mustCLI(t, "list", "show", crew); !strings.Contains(out, "policy refusals:  3") || !strings.Contains(out, "DMARC") {
		t.Errorf("list show does not report the policy refusals:\n%s", out)
	}
	var toOwner bool
	for _, m := range sink.Messages() {
		toOwner = toOwner || m.To[0] == owner && strings.Contains(string(m.Data), "Mail to bob@example.test on Garden crew is paused")
	}
	if !toOwner {
		t.Error("the owners were not told")
	}
	// Paused: the next post does not even try bob.
	refuseBob.Store(false)
	before := len(sink.Messages())
	postOne()
	for _, m := range sink.Messages()[before:] {
		if m.To[0] == "bob@example.test" {
			t.Errorf("a copy went to the paused member:\n%s", m.Data)
		}
	}
	// Bob asks for mail again.
	if err := ask(t, ts, "bob@example.test", "crew+each@"+testDomain, "", true); err != nil {
		t.Fatal(err)
	}
	settle(t, ts)
	if l := memberLine("bob@example.test"); strings.Contains(l, "paused") || strings.Contains(l, "score") {
		t.Errorf("after asking for mail again: %q", l)
	}
	before = len(sink.Messages())
	postOne()
	var got bool
	for _, m := range sink.Messages()[before:] {
		got = got || m.To[0] == "bob@example.test"
	}
	if !got {
		t.Error("bob gets nothing after resuming")
	}

	// A delivery report to bob's bounce address counts; a vacation notice there does not.
	verp, _ := bobVERP.Load().(string)
	if verp == "" {
		t.Fatal("no copy to bob carried a VERP address")
	}
	vacation := "From: bob@example.test\r\nTo: " + verp + "\r\nSubject: Out of office\r\nAuto-Submitted: auto-replied\r\nMessage-ID: <ooo@example.test>\r\n\r\nI am away until Monday.\r\n"
	if err := send(t, ts.SMTPAddr, "", []string{verp}, []byte(vacation)); err != nil {
		t.Fatal(err)
	}
	if l := memberLine("bob@example.test"); strings.Contains(l, "score") {
		t.Errorf("a vacation notice counted as a bounce: %q", l)
	}
	report := "From: MAILER-DAEMON@mx.example.test\r\nTo: " + verp + "\r\nSubject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn1@mx.example.test>\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/report; report-type=delivery-status; boundary=\"b1\"\r\n\r\n" +
		"--b1\r\nContent-Type: text/plain\r\n\r\nThis is the mail system at host mx.example.test.\r\n\r\n--b1\r\nContent-Type: message/delivery-status\r\n\r\n" +
		"Reporting-MTA: dns; mx.example.test\r\n\r\nFinal-Recipient: rfc822; bob@example.test\r\nOriginal-Recipient: rfc822;bob@example.test\r\nAction: failed\r\nStatus: 5.2.1\r\nDiagnostic-Code: smtp; 550 5.2.1 mailbox disabled\r\n\r\n--b1--\r\n"
	if err := send(t, ts.SMTPAddr, "", []string{verp}, []byte(report)); err != nil {
		t.Fatal(err)
	}
	if l := memberLine("bob@example.test"); !strings.Contains(l, "score 1 since") {
		t.Errorf("a delivery report did not count: %q", l)
	}
}

// TestBigMailToBounceAddressIsNotKept: a 5 MB report to a member's bounce address is counted
// as a bounce, but the database keeps only a bounded head of it, and only the latest reports.
func TestBigMailToBounceAddressIsNotKept(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink, "bob@example.test")
	var verp string
	if err := ts.st.View(func(tx store.Tx) error {
		m, err := tx.Member(crew, "bob@example.test")
		verp = ts.svc.BounceAddress(crew, m.ID)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	size := func() int64 {
		fi, err := os.Stat(ts.st.(store.Maintenance).Path())
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	before := size()
	report := "From: MAILER-DAEMON@mx.example.test\r\nTo: " + verp + "\r\nSubject: Undelivered Mail Returned to Sender\r\nMessage-ID: <big-dsn@mx.example.test>\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/report; report-type=delivery-status; boundary=\"b1\"\r\n\r\n" +
		"--b1\r\nContent-Type: text/plain\r\n\r\nThis is the mail system at host mx.example.test.\r\n\r\n--b1\r\nContent-Type: message/delivery-status\r\n\r\n" +
		"Reporting-MTA: dns; mx.example.test\r\n\r\nFinal-Recipient: rfc822; bob@example.test\r\nAction: failed\r\nStatus: 5.2.1\r\nDiagnostic-Code: smtp; 550 5.2.1 mailbox disabled\r\n\r\n" +
		"--b1\r\nContent-Type: text/plain\r\n\r\n" + strings.Repeat(strings.Repeat("x", 998)+"\r\n", 5<<20/1000) + "--b1--\r\n"
	if err := send(t, ts.SMTPAddr, "", []string{verp}, []byte(report)); err != nil {
		t.Fatal(err)
	}
	if l := members(t, ts); !strings.Contains(l, "score 1 since") {
		t.Errorf("the big report did not count as a bounce: %q", l)
	}
	if grown := size() - before; grown > 1<<20 {
		t.Errorf("a %d-byte mail to a bounce address grew the database by %d bytes", len(report), grown)
	}
}
