package delivery_test

import (
	"context"
	"errors"
	"log/slog"
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

// errDiskGone is what the store's commits fail with in these tests.
var errDiskGone = errors.New("the disk refused the write")

// messages keeps the messages of the log lines a queue writes, and writes them to the test's
// output too.
type messages struct {
	next slog.Handler
	mu   *sync.Mutex
	msgs *[]string
}

func newMessages(t testing.TB) messages {
	return messages{next: slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}), mu: &sync.Mutex{}, msgs: &[]string{}}
}

func (m messages) Enabled(context.Context, slog.Level) bool { return true }

func (m messages) Handle(ctx context.Context, r slog.Record) error {
	m.mu.Lock()
	*m.msgs = append(*m.msgs, r.Message)
	m.mu.Unlock()
	return m.next.Handle(ctx, r)
}

func (m messages) WithAttrs(as []slog.Attr) slog.Handler {
	m.next = m.next.WithAttrs(as)
	return m
}

func (m messages) WithGroup(name string) slog.Handler {
	m.next = m.next.WithGroup(name)
	return m
}

// has says whether a line whose message begins with prefix was written.
func (m messages) has(prefix string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.ContainsFunc(*m.msgs, func(s string) bool { return strings.HasPrefix(s, prefix) })
}

// queueOn is newQueue with the log lines kept.
func queueOn(t testing.TB, st *store.Store, tr delivery.Transport) (*delivery.Queue, *clock, messages) {
	logs := newMessages(t)
	q := delivery.New(st, composeMessage, tr, delivery.Config{Workers: 2}, slog.New(logs))
	clk := newClock(t0)
	q.Now = clk.Now
	q.Jitter = func() float64 { return 0.5 }
	return q, clk, logs
}

// TestDeferralRecordedOnceTheStoreIsBack: the member's server answers 451 and the disk refuses
// the next three commits, the one of that outcome among them. The outcome is written again
// (after 1 s, then 2 s, then 4 s) until the store takes it: the row is then due on its retry
// schedule, a minute after the attempt, not at the end of its 30-minute lease, and the retry
// delivers it.
func TestDeferralRecordedOnceTheStoreIsBack(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	sink := mailtest.NewSink(t)
	var calls atomic.Int32
	sink.Reject = func(mailtest.Message) error {
		if calls.Add(1) == 1 {
			if err := st.Faults().FailCommits(3, errDiskGone); err != nil {
				t.Error(err)
			}
			return mailtest.ErrTemporary
		}
		return nil
	}
	d := enqueue(t, st, store.Delivery{List: "crew", Seq: 1, From: "crew-bounces@crew.test", To: "alice@example.test", Created: t0})[0]
	q, clk, logs := queueOn(t, st, plainSmarthost(sink.Addr))
	runQueue(t, q)

	rows := waitOutbox(t, st, "the deferral to be recorded", func(rows []store.Delivery) bool {
		return len(rows) == 1 && settled(rows) && rows[0].Attempts == 1
	})
	if want := t0.Add(delivery.Backoff(1, 0.5)); !rows[0].Due.Equal(want) || !strings.Contains(rows[0].LastError, "451") {
		t.Errorf("row %+v, want due at %v after the 451", rows[0], want)
	}
	if !logs.has("cannot record delivery outcome yet") || !logs.has("delivery outcome recorded after the store refused it") {
		t.Error("the log does not tell of the outcome refused, then recorded")
	}
	clk.Advance(delivery.Backoff(1, 0.5))
	q.Wake()
	checkMessage(t, sink.Wait(t, 1)[0], d)
	waitOutbox(t, st, "an empty outbox", empty)
	if got := calls.Load(); got != 2 {
		t.Errorf("the server saw %d attempts, want 2", got)
	}
}

// TestDeliveredRecordedOnceTheStoreIsBack: the message is delivered, and the disk refuses the
// next two commits (the claim that follows the attempt may be one): the outcome is written
// again and the delivery leaves the outbox, sent once, with nothing recorded as failed.
func TestDeliveredRecordedOnceTheStoreIsBack(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	sink := mailtest.NewSink(t)
	var calls atomic.Int32
	sink.Reject = func(mailtest.Message) error {
		if calls.Add(1) == 1 {
			if err := st.Faults().FailCommits(2, errDiskGone); err != nil {
				t.Error(err)
			}
		}
		return nil
	}
	enqueue(t, st, store.Delivery{List: "crew", Seq: 1, From: "crew-bounces@crew.test", To: "alice@example.test", Created: t0})
	q, _, logs := queueOn(t, st, plainSmarthost(sink.Addr))
	stop := runQueue(t, q)
	waitOutbox(t, st, "the delivery to be recorded", empty)
	stop()
	if got := len(sink.Messages()); got != 1 || calls.Load() != 1 {
		t.Errorf("%d messages arrived over %d attempts, want 1", got, calls.Load())
	}
	if f := failures(t, st); len(f) != 0 {
		t.Errorf("failures recorded: %+v", f)
	}
	if !logs.has("delivery outcome recorded after the store refused it") {
		t.Error("the outcome was recorded without the store refusing it first: the test tests nothing")
	}
}

// TestOutcomeNotWrittenAfterItsLease: the disk refuses every commit until the lease of the
// attempt's row has ended. The outcome is then not written (the row is due again, and its
// next attempt records what happens to it): once the disk takes writes again, the row is
// attempted again and delivered, and the outbox holds nothing of the first attempt.
func TestOutcomeNotWrittenAfterItsLease(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	sink := mailtest.NewSink(t)
	var calls atomic.Int32
	sink.Reject = func(mailtest.Message) error {
		if calls.Add(1) == 1 {
			if err := st.Faults().FailCommits(1<<30, errDiskGone); err != nil {
				t.Error(err)
			}
			return mailtest.ErrTemporary
		}
		return nil
	}
	d := enqueue(t, st, store.Delivery{List: "crew", Seq: 1, From: "crew-bounces@crew.test", To: "alice@example.test", Created: t0})[0]
	q, clk, logs := queueOn(t, st, plainSmarthost(sink.Addr))
	runQueue(t, q)
	waitFor(t, "the outcome refused", func() bool { return logs.has("cannot record delivery outcome yet") })
	clk.Advance(time.Hour) // past the lease (30 minutes with the default send timeout)
	waitFor(t, "the outcome dropped", func() bool { return logs.has("delivery outcome not recorded before its lease ended") })
	if err := st.Faults().FailCommits(0, nil); err != nil {
		t.Fatal(err)
	}
	q.Wake()
	checkMessage(t, sink.Wait(t, 1)[0], d)
	waitOutbox(t, st, "an empty outbox", empty)
	if got := calls.Load(); got != 2 {
		t.Errorf("the server saw %d attempts, want 2", got)
	}
	if f := failures(t, st); len(f) != 0 {
		t.Errorf("failures recorded: %+v", f)
	}
}

// unreadable is a store whose next reads fail, as while a database is away.
type unreadable struct {
	*store.Store
	fail  atomic.Int32 // how many more reads fail
	reads atomic.Int32 // how many failed
}

func (u *unreadable) View(fn func(store.Tx) error) error {
	if u.fail.Add(-1) >= 0 {
		u.reads.Add(1)
		return errDiskGone
	}
	return u.Store.View(fn)
}

// TestNextDueUnreadableLooksAgainSoon: the only row is due in an hour, and the queue cannot
// read when the next row is due (the database is away). It asks again shortly rather than an
// hour later: once the hour has passed on its clock, the row goes out without anyone waking
// the queue.
func TestNextDueUnreadableLooksAgainSoon(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	sink := mailtest.NewSink(t)
	d := enqueue(t, st, store.Delivery{List: "crew", Seq: 1, From: "crew-bounces@crew.test", To: "alice@example.test", Created: t0, Due: t0.Add(time.Hour)})[0]
	u := &unreadable{Store: st}
	u.fail.Store(1)
	q := delivery.New(u, composeMessage, plainSmarthost(sink.Addr), delivery.Config{Workers: 1}, testLogger(t))
	clk := newClock(t0)
	q.Now = clk.Now
	runQueue(t, q)
	waitFor(t, "the queue to fail to read the outbox", func() bool { return u.reads.Load() == 1 })
	clk.Advance(time.Hour)
	checkMessage(t, sink.Wait(t, 1)[0], d)
	waitOutbox(t, st, "an empty outbox", empty)
}
