package main

import (
	"encoding/json"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/emersion/go-smtp"

	"crewmail/internal/mailtest"
	"crewmail/store"
)

// TestQueueCommands: a destination that throttles (451 4.7.28) leaves its delivery deferred in
// the outbox; queue ls shows it (recipient, list, attempts, next try, last result, and the
// destination deferred), queue retry -domain makes it due at once (delivered without waiting
// for the back-off), queue drop takes one out without sending it; with the server stopped the
// commands work on the database directly.
func TestQueueCommands(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	var throttle atomic.Bool
	throttle.Store(true)
	sink.Reject = func(m mailtest.Message) error {
		if throttle.Load() && strings.HasSuffix(m.To[0], "@slow.test") {
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 28}, Message: "rate limited, try again later"}
		}
		return nil
	}
	// bob alone, so that the one copy a post makes is his: the smarthost is held as a whole
	// once it asks us to slow down, and another member's copy would wait in the outbox too.
	ts := newCrew(t, sink, "bob@slow.test")
	ts.mustCLI(t, "list", "set", crew, "-post", "anyone") // alice posts without being a member
	deferred := func(rows []store.Delivery) bool {
		return len(rows) == 1 && rows[0].Attempts == 1 && !rows[0].Leased && rows[0].LastError != ""
	}
	if err := send(t, ts.SMTPAddr, "alice@example.test", []string{crew}, post("alice@example.test", "one", "q1@example.test", "hello")); err != nil {
		t.Fatal(err)
	}
	rows := ts.waitOutbox(t, "bob's copy deferred", deferred)

	out := ts.mustCLI(t, "queue", "ls")
	id := strconv.FormatUint(rows[0].ID, 10)
	// The row: ID, TO, LIST, KIND, ATTEMPTS, NEXT TRY (date and time), STATE, LAST RESULT; and
	// the destination: DESTINATION, WAITING, DEFERRED, NEXT TRY, LAST RESULT.
	row, dest := fieldsOf(out, id), fieldsOf(out, "slow.test")
	if len(row) < 9 || row[1] != "bob@slow.test" || row[2] != crew || row[3] != "post" || row[4] != "1" || row[7] != "deferred" ||
		!strings.Contains(strings.Join(row[8:], " "), "451") || !strings.Contains(strings.Join(row[8:], " "), "rate limited") {
		t.Errorf("queue ls row %q:\n%s", row, out)
	}
	if len(dest) < 4 || dest[1] != "1" || dest[2] != "1" {
		t.Errorf("queue ls destination %q:\n%s", dest, out)
	}
	// The smarthost asked us to slow down: the running server holds it back, and says so.
	if held := fieldsOf(out, sink.Addr); len(held) < 3 || !strings.Contains(out, "HELD DESTINATION") {
		t.Errorf("queue ls does not show the smarthost held:\n%s", out)
	}
	if out := ts.mustCLI(t, "queue", "ls", "-domain", "example.test"); strings.TrimSpace(out) != "The outbox is empty." {
		t.Errorf("queue ls -domain example.test:\n%s", out)
	}
	// /metrics shows the destination deferred.
	if n := scrape(t, ts)[`crewmail_outbox_deferred_deliveries{domain="slow.test"}`]; n != 1 {
		t.Errorf(`crewmail_outbox_deferred_deliveries{domain="slow.test"} = %v, want 1`, n)
	}
	var e queueEntry
	if err := json.Unmarshal([]byte(ts.mustCLI(t, "queue", "ls", "-json", "-list", crew)), &e); err != nil || e.To != "bob@slow.test" ||
		e.Domain != "slow.test" || e.Attempts != 1 || e.State != "deferred" || !strings.Contains(e.LastResult, "451") || !e.NextTry.Equal(rows[0].Due) {
		t.Errorf("queue ls -json: %+v, %v", e, err)
	}

	// Wrong command lines are usage errors; an unknown ID fails.
	for _, args := range [][]string{{"queue", "retry"}, {"queue", "retry", id, "-domain", "slow.test"}, {"queue", "drop"}, {"queue", "drop", "x"}, {"queue", "ls", "extra"}} {
		if _, _, code := ts.cli(t, args...); code != exitUsage {
			t.Errorf("crewmail %s: exit %d, want %d", strings.Join(args, " "), code, exitUsage)
		}
	}
	if _, errOut, code := ts.cli(t, "queue", "drop", "999999"); code != exitError || !strings.Contains(errOut, "not found") {
		t.Errorf("queue drop of an unknown ID: exit %d, %s", code, errOut)
	}

	// The destination recovers; retry makes the delivery due now: no waiting for the back-off
	// (the test's clock does not move).
	throttle.Store(false)
	if out := ts.mustCLI(t, "queue", "retry", "-domain", "slow.test"); !strings.Contains(out, "delivery "+id+" to bob@slow.test is due now") {
		t.Errorf("queue retry: %s", out)
	}
	if m := sink.Wait(t, 1)[0]; m.To[0] != "bob@slow.test" {
		t.Errorf("the retried copy went to %v", m.To)
	}
	settle(t, ts)

	// A second post, deferred again, dropped: it never goes out.
	throttle.Store(true)
	if err := send(t, ts.SMTPAddr, "alice@example.test", []string{crew}, post("alice@example.test", "two", "q2@example.test", "hello")); err != nil {
		t.Fatal(err)
	}
	bobs := func(rows []store.Delivery) (store.Delivery, bool) {
		for _, d := range rows {
			if d.To == "bob@slow.test" {
				return d, true
			}
		}
		return store.Delivery{}, false
	}
	rows = ts.waitOutbox(t, "the second copy to bob deferred", func(rows []store.Delivery) bool {
		d, ok := bobs(rows)
		return ok && d.Attempts == 1 && !d.Leased && d.LastError != ""
	})
	d, _ := bobs(rows)
	id = strconv.FormatUint(d.ID, 10)
	ts.stop()
	// No server: the commands open the database themselves.
	if out, errOut, code := runCLI(t, ts.cfgPath, "queue", "ls"); code != 0 || len(fieldsOf(out, id)) == 0 {
		t.Errorf("queue ls without a server: exit %d: %s%s", code, out, errOut)
	}
	if out, errOut, code := runCLI(t, ts.cfgPath, "queue", "drop", id); code != 0 || !strings.Contains(out, "dropped delivery "+id+" to bob@slow.test") {
		t.Errorf("queue drop: exit %d: %s%s", code, out, errOut)
	}
	if out, _, _ := runCLI(t, ts.cfgPath, "queue", "ls"); strings.Contains(out, "bob@slow.test") {
		t.Errorf("after the drop bob's copy still waits: %s", out)
	}
	bob := 0
	for _, m := range sink.Messages() {
		if m.To[0] == "bob@slow.test" {
			bob++
		}
	}
	if bob != 1 {
		t.Errorf("bob got %d copies, want 1 (the dropped one never)", bob)
	}
}

// fieldsOf is the whitespace-separated fields of the line of out whose first field is first.
func fieldsOf(out, first string) []string {
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == first {
			return f
		}
	}
	return nil
}
