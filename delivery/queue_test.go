package delivery_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"crewmail/delivery"
	"crewmail/internal/mailtest"
	"crewmail/store"
)

func plainSmarthost(addr string) *delivery.Smarthost {
	return delivery.NewSmarthost(addr, "crewmail.test", delivery.TLSNone, "", "", nil, nil)
}

// checkMessage fails unless m is what d should have produced.
func checkMessage(t testing.TB, m mailtest.Message, d store.Delivery) {
	t.Helper()
	if m.From != d.From {
		t.Errorf("delivery %d: envelope from %q, want %q", d.ID, m.From, d.From)
	}
	if !slices.Equal(m.To, []string{d.To}) {
		t.Errorf("delivery %d: envelope to %q, want [%q]", d.ID, m.To, d.To)
	}
	if want := messageFor(d); !bytes.Equal(m.Data, want) {
		t.Errorf("delivery %d: message\n%q\nwant\n%q", d.ID, m.Data, want)
	}
}

func TestQueueDeliversEveryMessageOnce(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	sink := mailtest.NewSink(t)
	const n = 24
	var ds []store.Delivery
	for i := range n {
		d := store.Delivery{
			List:    "crew",
			Seq:     uint64(100 + i),
			From:    fmt.Sprintf("crew-bounces+%d@crew.test", i),
			To:      fmt.Sprintf("member%d@example.test", i),
			Created: t0.Add(-time.Duration(i) * time.Second),
		}
		if i == 7 {
			d.From = "" // a notice goes out with the null sender
		}
		ds = append(ds, d)
	}
	// One more is due only in an hour: it must wait for it.
	ds = append(ds, store.Delivery{List: "crew", Seq: 999, From: "crew-bounces@crew.test",
		To: "later@example.test", Created: t0, Due: t0.Add(time.Hour)})
	ds = enqueue(t, st, ds...)
	now, later := ds[:n], ds[n]

	q, clk := newQueue(t, st, composeMessage, plainSmarthost(sink.Addr), delivery.Config{Workers: 4})
	stop := runQueue(t, q)

	sink.Wait(t, n)
	rows := waitOutbox(t, st, "the due deliveries to be recorded", func(rows []store.Delivery) bool {
		return len(rows) == 1 && settled(rows)
	})
	if rows[0].ID != later.ID || rows[0].Attempts != 0 {
		t.Fatalf("outbox holds %+v, want only the delivery due later, never attempted", rows[0])
	}

	clk.Advance(time.Hour)
	q.Wake()
	sink.Wait(t, n+1)
	waitOutbox(t, st, "an empty outbox", empty)
	stop()

	// Run has returned: nothing more can arrive. Every delivery arrived exactly once.
	msgs := sink.Messages()
	if len(msgs) != n+1 {
		t.Errorf("sink got %d messages, want %d", len(msgs), n+1)
	}
	byRcpt := map[string][]mailtest.Message{}
	for _, m := range msgs {
		if len(m.To) != 1 {
			t.Errorf("message with envelope recipients %q, want one", m.To)
			continue
		}
		byRcpt[m.To[0]] = append(byRcpt[m.To[0]], m)
	}
	for _, d := range append(now, later) {
		got := byRcpt[d.To]
		if len(got) != 1 {
			t.Errorf("%s got %d copies, want 1", d.To, len(got))
			continue
		}
		checkMessage(t, got[0], d)
	}
	if f := failures(t, st); len(f) != 0 {
		t.Errorf("failures recorded: %+v", f)
	}
}

func TestQueueRetriesTemporaryFailure(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	sink := mailtest.NewSink(t)
	const target = "alice@example.test"
	var calls atomic.Int32
	sink.Reject = func(m mailtest.Message) error {
		if m.To[0] == target && calls.Add(1) == 1 {
			return mailtest.ErrTemporary
		}
		return nil
	}
	var mu sync.Mutex
	var attempts []int
	composer := composerFunc(func(d store.Delivery) ([]byte, error) {
		if d.To == target {
			mu.Lock()
			attempts = append(attempts, d.Attempts)
			mu.Unlock()
		}
		return messageFor(d), nil
	})
	d := enqueue(t, st, store.Delivery{List: "crew", Seq: 1, From: "crew-bounces@crew.test", To: target, Created: t0})[0]
	q, clk := newQueue(t, st, composer, plainSmarthost(sink.Addr), delivery.Config{Workers: 2})
	runQueue(t, q)

	rows := waitOutbox(t, st, "the failed attempt to be recorded", func(rows []store.Delivery) bool {
		return len(rows) == 1 && settled(rows) && rows[0].Attempts == 1
	})
	r := rows[0]
	wait := delivery.Backoff(1, 0.5)
	if want := t0.Add(wait); !r.Due.Equal(want) {
		t.Errorf("retry due at %v, want %v (Backoff(1) after the attempt)", r.Due, want)
	}
	if !strings.Contains(r.LastError, "451") || !strings.Contains(r.LastError, "try again later") {
		t.Errorf("LastError = %q, want the server's 451 reply", r.LastError)
	}
	if got := sink.Messages(); len(got) != 0 {
		t.Fatalf("sink kept %d messages after a 451", len(got))
	}

	// A second before it is due, the retry stays put while other mail goes out.
	clk.Advance(wait - time.Second)
	marker := enqueue(t, st, store.Delivery{List: "crew", Seq: 2, From: "crew-bounces@crew.test", To: "bob@example.test", Created: clk.Now()})[0]
	q.Wake()
	sink.Wait(t, 1)
	for _, row := range outbox(t, st) {
		if row.ID == d.ID && (row.Attempts != 1 || row.Leased) {
			t.Fatalf("retry attempted before it was due: %+v", row)
		}
	}

	clk.Advance(time.Second)
	q.Wake()
	msgs := sink.Wait(t, 2)
	waitOutbox(t, st, "an empty outbox", empty)
	for _, m := range msgs {
		switch m.To[0] {
		case target:
			checkMessage(t, m, d)
		default:
			checkMessage(t, m, marker)
		}
	}
	if got := calls.Load(); got != 2 {
		t.Errorf("server saw %d attempts for %s, want 2", got, target)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(attempts, []int{1, 2}) {
		t.Errorf("composer saw attempts %v, want [1 2]", attempts)
	}
}

func TestQueuePermanentFailureIsNotRetried(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	sink := mailtest.NewSink(t)
	const gone = "gone@example.test"
	var calls atomic.Int32
	sink.Reject = func(m mailtest.Message) error {
		if m.To[0] == gone {
			calls.Add(1)
			return mailtest.ErrPermanent
		}
		return nil
	}
	d := enqueue(t, st, store.Delivery{List: "crew", Seq: 5, From: "crew-bounces@crew.test", To: gone, Created: t0.Add(-time.Minute)})[0]
	q, clk := newQueue(t, st, composeMessage, plainSmarthost(sink.Addr), delivery.Config{})
	runQueue(t, q)

	var fs []store.Failure
	waitFor(t, "the failure to be recorded", func() bool {
		fs = failures(t, st)
		return len(fs) == 1
	})
	f := fs[0]
	if f.ID != d.ID || f.To != gone || f.List != "crew" || f.Seq != 5 {
		t.Errorf("failure is for %+v, want delivery %d to %s", f.Delivery, d.ID, gone)
	}
	if !strings.Contains(f.Error, "550") || !strings.Contains(f.Error, "no such user") {
		t.Errorf("failure error %q, want the server's 550 reply", f.Error)
	}
	if !f.Failed.Equal(t0) {
		t.Errorf("failed at %v, want %v (the queue's clock)", f.Failed, t0)
	}
	if f.Attempts != 1 || f.Leased {
		t.Errorf("failure has Attempts=%d Leased=%v, want 1 and false", f.Attempts, f.Leased)
	}
	waitOutbox(t, st, "an empty outbox", empty)

	// Days later, with other mail flowing, the refused one is not tried again.
	clk.Advance(5 * 24 * time.Hour)
	enqueue(t, st, store.Delivery{List: "crew", Seq: 6, From: "crew-bounces@crew.test", To: "alive@example.test", Created: clk.Now()})
	q.Wake()
	sink.Wait(t, 1)
	waitOutbox(t, st, "an empty outbox", empty)
	if got := calls.Load(); got != 1 {
		t.Errorf("server saw %d attempts for %s, want 1", got, gone)
	}
	if fs := failures(t, st); len(fs) != 1 {
		t.Errorf("%d failures recorded, want 1", len(fs))
	}
}

func TestQueueGivesUpAfterMaxAge(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	sink := mailtest.NewSink(t)
	sink.Reject = func(mailtest.Message) error { return mailtest.ErrTemporary }
	ds := enqueue(t, st,
		store.Delivery{List: "crew", Seq: 1, From: "crew-bounces@crew.test", To: "old@example.test", Created: t0.Add(-72 * time.Hour)},
		store.Delivery{List: "crew", Seq: 2, From: "crew-bounces@crew.test", To: "young@example.test", Created: t0.Add(-47 * time.Hour)},
	)
	old, young := ds[0], ds[1]
	q, clk := newQueue(t, st, composeMessage, plainSmarthost(sink.Addr), delivery.Config{Workers: 2, MaxAge: 48 * time.Hour})
	runQueue(t, q)

	var fs []store.Failure
	waitFor(t, "the old delivery to fail and the young one to be deferred", func() bool {
		fs = failures(t, st)
		rows := outbox(t, st)
		return len(fs) == 1 && len(rows) == 1 && settled(rows)
	})
	if fs[0].ID != old.ID {
		t.Fatalf("failed %s, want %s", fs[0].To, old.To)
	}
	if !strings.HasPrefix(fs[0].Error, "gave up after 1 attempts") || !strings.Contains(fs[0].Error, "451") {
		t.Errorf("failure error %q, want it to say it gave up and why (451)", fs[0].Error)
	}
	r := outbox(t, st)[0]
	if r.ID != young.ID || r.Attempts != 1 || !r.Due.Equal(t0.Add(delivery.Backoff(1, 0.5))) {
		t.Errorf("deferred row %+v, want %s retried at %v", r, young.To, t0.Add(delivery.Backoff(1, 0.5)))
	}

	// Two hours on, the young one is past the limit too: its next temporary failure is its last.
	clk.Advance(2 * time.Hour)
	q.Wake()
	waitFor(t, "the young delivery to fail", func() bool {
		fs = failures(t, st)
		return len(fs) == 2
	})
	waitOutbox(t, st, "an empty outbox", empty)
	for _, f := range fs {
		if f.ID == young.ID && !strings.HasPrefix(f.Error, "gave up after 2 attempts") {
			t.Errorf("failure error %q, want it to say it gave up after 2 attempts", f.Error)
		}
	}
	if got := sink.Messages(); len(got) != 0 {
		t.Errorf("sink kept %d messages", len(got))
	}
}

// TestQueueResumesLeasedRowsAfterRestart: a row claimed by a process that stopped mid-send is
// delivered by the next one at once, not when its lease would have run out.
func TestQueueResumesLeasedRowsAfterRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sink := mailtest.NewSink(t)

	st1, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	d := enqueue(t, st1, store.Delivery{List: "crew", Seq: 3, From: "crew-bounces@crew.test", To: "carol@example.test", Created: t0})[0]
	err = st1.Update(func(tx store.Tx) error {
		claimed, err := tx.ClaimDue(t0, 30*time.Minute, 10)
		if err == nil && len(claimed) != 1 {
			err = fmt.Errorf("claimed %d rows, want 1", len(claimed))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := st1.Close(); err != nil {
		t.Fatal(err)
	}

	st2, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st2.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	if rows := outbox(t, st2); len(rows) != 1 || !rows[0].Leased {
		t.Fatalf("reopened outbox %+v, want the one leased row", rows)
	}
	var sawAttempts atomic.Int64
	composer := composerFunc(func(d store.Delivery) ([]byte, error) {
		sawAttempts.Store(int64(d.Attempts))
		return messageFor(d), nil
	})
	// The clock still reads t0: the lease (until t0+30m) has not run out.
	q, _ := newQueue(t, st2, composer, plainSmarthost(sink.Addr), delivery.Config{})
	runQueue(t, q)

	msgs := sink.Wait(t, 1)
	checkMessage(t, msgs[0], d)
	waitOutbox(t, st2, "an empty outbox", empty)
	if got := sawAttempts.Load(); got != 2 {
		t.Errorf("resumed attempt is number %d, want 2 (the interrupted one counts)", got)
	}
}

func TestQueueComposerErrors(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	sink := mailtest.NewSink(t)
	composer := composerFunc(func(d store.Delivery) ([]byte, error) {
		switch d.To {
		case "deleted@example.test":
			return nil, fmt.Errorf("post %d of %s: %w", d.Seq, d.List, store.ErrNotFound)
		case "flaky@example.test":
			return nil, errors.New("template cache busy")
		case "poison@example.test":
			panic("poisoned row")
		}
		return messageFor(d), nil
	})
	ds := enqueue(t, st,
		store.Delivery{List: "crew", Seq: 1, From: "crew-bounces@crew.test", To: "deleted@example.test", Created: t0},
		store.Delivery{List: "crew", Seq: 2, From: "crew-bounces@crew.test", To: "flaky@example.test", Created: t0},
		store.Delivery{List: "crew", Seq: 3, From: "crew-bounces@crew.test", To: "poison@example.test", Created: t0},
		store.Delivery{List: "crew", Seq: 4, From: "crew-bounces@crew.test", To: "fine@example.test", Created: t0},
	)
	deleted, flaky, poison, fine := ds[0], ds[1], ds[2], ds[3]
	q, _ := newQueue(t, st, composer, plainSmarthost(sink.Addr), delivery.Config{Workers: 1})
	runQueue(t, q)

	msgs := sink.Wait(t, 1)
	checkMessage(t, msgs[0], fine)
	var fs []store.Failure
	rows := waitOutbox(t, st, "every attempt to be recorded", func(rows []store.Delivery) bool {
		fs = failures(t, st)
		return len(rows) == 1 && settled(rows) && len(fs) == 2
	})

	// A missing post cannot appear later: failed for good.
	// A panic is set aside as failed, and the queue keeps serving (fine@ was delivered).
	got := map[uint64]string{}
	for _, f := range fs {
		got[f.ID] = f.Error
	}
	if e, ok := got[deleted.ID]; !ok || !strings.Contains(e, "not found") {
		t.Errorf("failure for the missing post: %q (recorded: %v), want it to say not found", e, ok)
	}
	if e, ok := got[poison.ID]; !ok || !strings.Contains(e, "poisoned row") {
		t.Errorf("failure for the panicking row: %q (recorded: %v), want the panic", e, ok)
	}
	// Any other error is retried on the schedule.
	r := rows[0]
	if r.ID != flaky.ID || r.Attempts != 1 || r.LastError != "template cache busy" || !r.Due.Equal(t0.Add(delivery.Backoff(1, 0.5))) {
		t.Errorf("outbox row %+v, want %s deferred to %v with its error", r, flaky.To, t0.Add(delivery.Backoff(1, 0.5)))
	}
	if n := len(sink.Messages()); n != 1 {
		t.Errorf("sink got %d messages, want 1", n)
	}
}

// TestQueueWorkersBoundConcurrency: no more sends run at once than there are workers; the
// oldest go first, and as each finishes the next starts, until all are out.
func TestQueueWorkersBoundConcurrency(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	g := newGate()
	const n, workers = 7, 2
	var ds []store.Delivery
	for i := range n {
		ds = append(ds, store.Delivery{List: "crew", Seq: uint64(i + 1), From: "crew-bounces@crew.test",
			To: fmt.Sprintf("m%d@example.test", i), Created: t0.Add(-time.Duration(n-i) * time.Millisecond)})
	}
	enqueue(t, st, ds...)
	q, _ := newQueue(t, st, composeMessage, g, delivery.Config{Workers: workers})
	runQueue(t, q)

	first := []string{g.next(t), g.next(t)}
	slices.Sort(first)
	if want := []string{ds[0].To, ds[1].To}; !slices.Equal(first, want) {
		t.Errorf("first sends went to %v, want the two oldest %v", first, want)
	}
	for i := workers; i < n; i++ {
		g.pass(t)
		g.next(t)
	}
	for range workers {
		g.pass(t)
	}
	waitOutbox(t, st, "an empty outbox", empty)
	maxSeen, sent, _ := g.stats()
	if maxSeen != workers {
		t.Errorf("%d sends ran at once, want %d (the number of workers)", maxSeen, workers)
	}
	slices.Sort(sent)
	var want []string
	for _, d := range ds {
		want = append(want, d.To)
	}
	slices.Sort(want)
	if !slices.Equal(sent, want) {
		t.Errorf("sent to %v, want each of %v once", sent, want)
	}
}

// TestQueueStopLeavesTheRestForTheNextStart: a stop lets the send under way finish, starts no
// other, closes the transport, and the next start delivers the rest, each exactly once.
func TestQueueStopLeavesTheRestForTheNextStart(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	sink := mailtest.NewSink(t)
	g := newGate()
	var ds []store.Delivery
	for i := range 4 {
		ds = append(ds, store.Delivery{List: "crew", Seq: uint64(i + 1), From: "crew-bounces@crew.test",
			To: fmt.Sprintf("m%d@example.test", i), Created: t0.Add(-time.Duration(4-i) * time.Millisecond)})
	}
	ds = enqueue(t, st, ds...)
	// The send timeout bounds the stop should a second send start after all.
	q, _ := newQueue(t, st, composeMessage, g, delivery.Config{Workers: 1, SendTimeout: 5 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- q.Run(ctx) }()
	if to := g.next(t); to != ds[0].To {
		t.Errorf("first send to %s, want %s", to, ds[0].To)
	}
	cancel()
	g.pass(t)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
	_, sent, closed := g.stats()
	if !slices.Equal(sent, []string{ds[0].To}) {
		t.Errorf("before the stop, sent to %v, want only %s", sent, ds[0].To)
	}
	if !closed {
		t.Errorf("Run returned without closing its transport")
	}
	if rows := outbox(t, st); len(rows) != len(ds)-1 {
		t.Fatalf("outbox after the stop holds %d rows, want %d", len(rows), len(ds)-1)
	}

	q2, _ := newQueue(t, st, composeMessage, plainSmarthost(sink.Addr), delivery.Config{Workers: 2})
	runQueue(t, q2)
	msgs := sink.Wait(t, len(ds)-1)
	waitOutbox(t, st, "an empty outbox", empty)
	got := map[string]int{}
	for _, m := range msgs {
		got[m.To[0]]++
	}
	for _, d := range ds[1:] {
		if got[d.To] != 1 {
			t.Errorf("%s got %d copies after the restart, want 1", d.To, got[d.To])
		}
	}
	if got[ds[0].To] != 0 {
		t.Errorf("%s was sent again after the restart", ds[0].To)
	}
}

// TestQueueStopFinishesAttemptsInFlight: stopping the queue does not cut off a send under way;
// Run returns once its outcome is recorded.
func TestQueueStopFinishesAttemptsInFlight(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	sink := mailtest.NewSink(t)
	release := sink.Hold()
	t.Cleanup(release)
	d := enqueue(t, st, store.Delivery{List: "crew", Seq: 1, From: "crew-bounces@crew.test", To: "dave@example.test", Created: t0})[0]
	q, _ := newQueue(t, st, composeMessage, plainSmarthost(sink.Addr), delivery.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- q.Run(ctx) }()
	// In flight: the message is at the server, which holds its answer. (Claimed alone is not
	// enough: a row claimed but not yet started is given back at a stop.)
	for deadline := time.Now().Add(60 * time.Second); sink.Held() < 1; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the delivery never reached the server")
		}
	}
	cancel()
	release()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Run did not return after the attempt in flight finished")
	}
	msgs := sink.Messages()
	if len(msgs) != 1 {
		t.Fatalf("sink got %d messages, want 1: the send in flight was cut off", len(msgs))
	}
	checkMessage(t, msgs[0], d)
	if rows := outbox(t, st); len(rows) != 0 {
		t.Errorf("Run returned before recording the attempt: outbox %+v", rows)
	}
}

// TestQueueSendTimeoutDefers: a server that never answers the data is cut off after the send
// timeout, and the delivery is retried later.
func TestQueueSendTimeoutDefers(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	sink := mailtest.NewSink(t)
	t.Cleanup(sink.Hold())
	d := enqueue(t, st, store.Delivery{List: "crew", Seq: 1, From: "crew-bounces@crew.test", To: "erin@example.test", Created: t0})[0]
	q, _ := newQueue(t, st, composeMessage, plainSmarthost(sink.Addr), delivery.Config{SendTimeout: 300 * time.Millisecond})
	runQueue(t, q)
	rows := waitOutbox(t, st, "the timed-out attempt to be recorded", func(rows []store.Delivery) bool {
		return len(rows) == 1 && settled(rows) && rows[0].Attempts == 1
	})
	r := rows[0]
	if r.ID != d.ID || r.LastError == "" || !r.Due.Equal(t0.Add(delivery.Backoff(1, 0.5))) {
		t.Errorf("row %+v, want it deferred to %v with an error", r, t0.Add(delivery.Backoff(1, 0.5)))
	}
	if fs := failures(t, st); len(fs) != 0 {
		t.Errorf("a timeout was recorded as a permanent failure: %+v", fs)
	}
}

func TestWakeNeverBlocks(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	q := delivery.New(st, composeMessage, plainSmarthost("127.0.0.1:1"), delivery.Config{}, testLogger(t))
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 100 {
			q.Wake() // nobody is running: must not block
		}
	}()
	// A bound on the failure, not a measure of speed: a Wake that blocks never returns, and the
	// test says so at once instead of hanging until go test's own timeout.
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatal("Wake blocked with nobody running the queue")
	}
}

// TestQueueGivesBackARowWhoseLeaseRanLow: a claimed row that waited for a worker until its
// lease has less than a send timeout left is not sent on that lease, where another process
// could claim it again mid-send; it is given back and claimed anew, and then sent once.
func TestQueueGivesBackARowWhoseLeaseRanLow(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	g := newGate()
	ds := enqueue(t, st,
		store.Delivery{List: "crew", Seq: 1, From: "crew-bounces@crew.test", To: "first@example.test", Created: t0.Add(-2 * time.Millisecond)},
		store.Delivery{List: "crew", Seq: 2, From: "crew-bounces@crew.test", To: "second@example.test", Created: t0.Add(-time.Millisecond)})
	cfg := delivery.Config{Workers: 1, SendTimeout: 10 * time.Minute, Lease: 30 * time.Minute}
	q, clk := newQueue(t, st, composeMessage, g, cfg)
	runQueue(t, q)

	if to := g.next(t); to != ds[0].To {
		t.Fatalf("first send to %s, want %s", to, ds[0].To)
	}
	// The lease is what the configuration says: on a shared database a dead node's rows wait
	// for it to end.
	for _, d := range outbox(t, st) {
		if want := t0.Add(cfg.Lease); !d.Due.Equal(want) {
			t.Errorf("row %d leased until %s, want %s", d.ID, d.Due.Format(time.TimeOnly), want.Format(time.TimeOnly))
		}
	}
	// Both rows were claimed together; the first send takes 25 of the lease's 30 minutes.
	now := clk.Advance(25 * time.Minute)
	g.pass(t)
	if to := g.next(t); to != ds[1].To {
		t.Fatalf("second send to %s, want %s", to, ds[1].To)
	}
	var lease time.Time
	for _, d := range outbox(t, st) {
		if d.ID == ds[1].ID {
			lease = d.Due
		}
	}
	if lease.Sub(now) < cfg.SendTimeout {
		t.Errorf("the second row is sent on a lease that ends %s after the send began, less than a send timeout; want a new lease", lease.Sub(now))
	}
	g.pass(t)
	waitOutbox(t, st, "an empty outbox", empty)
	if _, sent, _ := g.stats(); !slices.Equal(sent, []string{ds[0].To, ds[1].To}) {
		t.Errorf("sent to %v, want each once, in order", sent)
	}
}
