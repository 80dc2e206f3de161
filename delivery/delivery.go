// Package delivery owns sending what the outbox holds: the workers that claim due rows, the
// transports (smarthost, MX, Maildir), the retry schedule, recording each attempt's outcome,
// and judging whether the outbox is being worked (Health, Gauges).
package delivery

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-smtp"

	"crewmail/internal/mailaddr"
	"crewmail/internal/metrics"
	"crewmail/internal/outcome"
	"crewmail/store"
)

// Transport sends one message to one recipient.
type Transport interface {
	Send(ctx context.Context, from, to string, msg []byte) error
}

// Composer turns an outbox row into the bytes to send (the list copy of a post, a notice).
type Composer interface {
	Compose(d store.Delivery) ([]byte, error)
}

// Config is the delivery workers' settings.
type Config struct {
	Workers     int
	MaxAge      time.Duration // temporary failures are retried this long after the mail was queued
	SendTimeout time.Duration // one attempt; default 10 minutes
	Lease       time.Duration // a claimed row becomes due again after this (a crash mid-send); at least 3 send timeouts
	Signer      *Signer       // DKIM-signs each message with its list's domain key; nil: unsigned
	// Failed, when set, runs in the transaction that records a delivery as failed for good
	// (bounce accounting), with the outcome of its last attempt.
	Failed func(tx store.Tx, d store.Delivery, r outcome.Result) error
	// MaxConnectionsPerDestination bounds the attempts under way at once to one limited
	// destination (the MX host set of a domain; not the smarthost); default 3.
	MaxConnectionsPerDestination int
	// MessagesPerMinute caps the messages sent to one limited destination a minute; 0: no cap.
	MessagesPerMinute int
}

// claimAhead is how many rows per worker one claim leases: one commit for that many attempts.
const claimAhead = 8

// Queue drains the outbox.
type Queue struct {
	st        store.Backend
	composer  Composer
	transport Transport
	cfg       Config
	log       *slog.Logger
	wake      chan struct{}
	pace      pacer
	rec       *recorder // while Run runs: writes outcomes in batches
	// Now is the clock; Jitter returns a number in [0,1) for the retry schedule. Tests replace them.
	Now    func() time.Time
	Jitter func() float64
}

// New returns a Queue.
func New(st store.Backend, composer Composer, transport Transport, cfg Config, log *slog.Logger) *Queue {
	if cfg.Workers < 1 {
		cfg.Workers = 1
	}
	if cfg.SendTimeout == 0 {
		cfg.SendTimeout = 10 * time.Minute
	}
	// An attempt starts only while its row's lease has more than a send timeout (and the time
	// to record its outcome) left, so it ends before another process may claim the row; a row
	// that waited longer for a worker is given back instead (Run). The lease is kept short, since
	// on a shared database a dead node's rows wait for it to run out.
	if minLease := 3 * cfg.SendTimeout; cfg.Lease < minLease {
		cfg.Lease = minLease
	}
	if cfg.MaxAge == 0 {
		cfg.MaxAge = 5 * 24 * time.Hour
	}
	if cfg.MaxConnectionsPerDestination < 1 {
		cfg.MaxConnectionsPerDestination = 3
	}
	return &Queue{st: st, composer: composer, transport: transport, cfg: cfg, log: log,
		wake: make(chan struct{}, 1), Now: time.Now, Jitter: rand.Float64,
		pace: pacer{maxConns: cfg.MaxConnectionsPerDestination, perMinute: cfg.MessagesPerMinute}}
}

// Wake tells the workers that new rows are due. It never blocks.
func (q *Queue) Wake() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Run delivers until ctx is done, then lets the attempts in flight finish (up to the send
// timeout) and returns. The outbox rows are the truth: Run starts by making rows leased by a
// process that is gone due again.
func (q *Queue) Run(ctx context.Context) error {
	var released int
	err := q.st.Update(func(tx store.Tx) error {
		var err error
		released, err = tx.ReleaseLeases(q.Now())
		return err
	})
	if err != nil {
		return fmt.Errorf("release outbox leases: %w", err)
	}
	if released > 0 {
		q.log.Info("resuming deliveries interrupted by a stop", "count", released)
	}
	sendCtx, cancelSends := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelSends()
	q.rec = newRecorder(q.st)
	// Every outcome is written before Run returns (drain waits for the attempts first).
	defer func() { q.rec.close(); q.rec = nil }()
	finished := make(chan string, q.cfg.Workers)
	inflight := 0
	// One recipient's deliveries go one at a time, in the order claimed (due time, then the
	// order they were queued: archive order), so that posts held back together arrive in order.
	busy := map[string]int{}
	done := func(to string) {
		inflight--
		if busy[to]--; busy[to] <= 0 {
			delete(busy, to)
		}
	}
	// Rows are claimed in batches (one write transaction, one fsync, for many rows) and wait
	// here for a free worker; their leases cover the wait. A claim is committed beside this
	// loop, which goes on handing rows to the workers meanwhile, and the next one starts while
	// they still have plenty in hand: no worker stands idle while a claim is written.
	var ready []claimed
	batch := claimAhead * q.cfg.Workers
	claims := make(chan []claimed, 1)
	claiming := false
	// want: something happened since the last claim began (the start, a wake-up, the timer,
	// an attempt that ended, a full batch), so there may be rows to claim.
	want := true
	claim := func() {
		claiming, want = true, false
		go func() {
			var rows []store.Delivery
			now := q.Now()
			err := q.st.Update(func(tx store.Tx) error {
				var err error
				rows, err = tx.ClaimDue(now, q.cfg.Lease, batch)
				return err
			})
			if err != nil {
				q.log.Error("cannot claim deliveries from the outbox", "err", err)
			}
			// The lease runs from the claim's clock reading at the latest: a start judged by
			// it is never later than the store's.
			last := now.Add(q.cfg.Lease - q.cfg.SendTimeout - min(recordMargin, q.cfg.SendTimeout))
			got := make([]claimed, len(rows))
			for i, d := range rows {
				got[i] = claimed{d, last}
			}
			claims <- got
		}()
	}
	took := func(rows []claimed) {
		claiming = false
		ready = append(ready, rows...)
		if len(rows) == batch {
			want = true // a full batch: there may be more due right now
		}
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if want && !claiming && len(ready) < batch/2 && ctx.Err() == nil {
			claim()
		}
		var stale []store.Delivery
		for i := 0; inflight < q.cfg.Workers && i < len(ready) && ctx.Err() == nil; {
			d := ready[i].Delivery
			if q.Now().After(ready[i].lastStart) {
				// It waited for a worker so long that its lease could run out mid-send.
				stale = append(stale, d)
				ready = slices.Delete(ready, i, i+1)
				continue
			}
			if busy[d.To] > 0 {
				i++
				continue
			}
			ready = slices.Delete(ready, i, i+1)
			inflight++
			busy[d.To]++
			go func() {
				defer func() { finished <- d.To }()
				q.attempt(sendCtx, d)
			}()
		}
		if len(stale) > 0 {
			q.unclaim(stale)
			want = true
		}
		if ctx.Err() != nil {
			if claiming {
				took(<-claims)
			}
			q.unclaim(deliveries(ready))
			return q.drain(inflight, finished, cancelSends)
		}
		if claiming || len(ready) > 0 || want {
			select {
			case to := <-finished:
				done(to)
				want = true
			case claimed := <-claims:
				took(claimed)
			case <-ctx.Done():
			}
			continue
		}
		wait := time.Hour
		if err := q.st.View(func(tx store.Tx) error {
			next, ok, err := tx.NextDue()
			if ok {
				wait = max(next.Sub(q.Now()), time.Millisecond)
			}
			return err
		}); err != nil {
			q.log.Error("cannot read when the next delivery is due; looking again in an hour or when woken", "err", err)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
		case <-q.wake:
		case to := <-finished:
			done(to)
		case <-timer.C:
		}
		want = true
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// claimed is a row claimed and waiting for a worker, and the latest time its attempt may start.
type claimed struct {
	store.Delivery
	lastStart time.Time
}

// recordMargin is what an attempt's outcome is given to be recorded before its lease ends (a
// send timeout, when that is shorter).
const recordMargin = time.Minute

func deliveries(rows []claimed) []store.Delivery {
	ds := make([]store.Delivery, len(rows))
	for i, r := range rows {
		ds[i] = r.Delivery
	}
	return ds
}

// unclaim gives back rows claimed but not started, as they were: due now, the attempt that
// never happened not counted. Should this fail, their leases run out at the next start.
func (q *Queue) unclaim(rows []store.Delivery) {
	if len(rows) == 0 {
		return
	}
	now := q.Now()
	err := q.st.Update(func(tx store.Tx) error {
		for _, d := range rows {
			back := d
			back.Attempts--
			if err := tx.Retry(back, now, d.LastError); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		q.log.Error("cannot give back unstarted deliveries; they are retried at the next start", "err", err)
	}
}

// drain waits for the attempts in flight; those still going after the send timeout are cut
// off, and their rows are retried at the next start.
func (q *Queue) drain(inflight int, finished chan string, cancel context.CancelFunc) error {
	deadline := time.NewTimer(q.cfg.SendTimeout)
	defer deadline.Stop()
	for inflight > 0 {
		select {
		case <-finished:
			inflight--
		case <-deadline.C:
			cancel()
			for ; inflight > 0; inflight-- {
				<-finished
			}
		}
	}
	if c, ok := q.transport.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// attempt sends one delivery and records the outcome. A destination on hold, or at its rate
// cap, gets no connection: the delivery waits in the outbox until it may go, its attempt not
// counted.
func (q *Queue) attempt(ctx context.Context, d store.Delivery) {
	start := time.Now()
	log := attemptLog{l: q.log, attrs: append(make([]any, 0, 32), "id", d.ID, "list", d.List, "seq", d.Seq, "rcpt", d.To, "attempt", d.Attempts)}
	defer func() {
		// A poisoned row must not take the server down: set it aside and keep serving.
		if r := recover(); r != nil {
			log.Error("delivery attempt panicked", "panic", r, "stack", string(debug.Stack()))
			q.record(log, d, Permanent(fmt.Errorf("internal error: %v", r)), start, nil, time.Time{})
		}
	}()
	msg, err := q.composer.Compose(d)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			err = Permanent(err)
		}
		q.record(log, d, err, start, nil, time.Time{})
		return
	}
	if id := messageID(msg); id != "" {
		log = log.With("msgid", id)
	}
	if q.cfg.Signer != nil {
		_, domain, _ := mailaddr.Split(d.List)
		if msg, err = q.cfg.Signer.Sign(domain, msg); err != nil {
			q.record(log, d, err, start, nil, time.Time{})
			return
		}
	}
	sctx, cancel := context.WithTimeout(ctx, q.cfg.SendTimeout)
	defer cancel()
	var dest string
	var limited bool
	if r, ok := q.transport.(Router); ok {
		dest, limited = r.Destination(sctx, d.To)
	}
	if dest != "" {
		until, release, err := q.pace.admit(sctx, dest, limited, q.Now())
		if err != nil {
			q.unclaim([]store.Delivery{d}) // stopping while waiting for a connection
			return
		}
		if !until.IsZero() {
			q.wait(log, d, dest, until)
			return
		}
		defer release()
		log = log.With("destination", dest)
	}
	var note Note
	err = q.transport.Send(WithNote(sctx, &note), d.From, d.To, msg)
	var holdUntil time.Time
	if dest != "" {
		if res := Outcome(err); res.Throttled() {
			holdUntil = q.pace.hold(dest, q.Now(), q.Jitter())
			log.Warn("destination asked to slow down: on hold", "until", holdUntil.Format(time.RFC3339), "step", res.Step, "code", res.Code, "status", res.Status)
		} else if err == nil {
			q.pace.ok(dest, q.Now())
		}
	}
	q.record(log, d, err, start, &note, holdUntil)
}

// wait puts d back in the outbox until its destination takes mail again; the attempt that did
// not happen is not counted. Deliveries held together are due together and so come back in the
// order they were queued.
func (q *Queue) wait(log attemptLog, d store.Delivery, dest string, until time.Time) {
	back := d
	back.Attempts--
	log.Debug("destination on hold: delivery waits", "destination", dest, "until", until.Format(time.RFC3339))
	if err := q.st.Update(func(tx store.Tx) error { return tx.Retry(back, until, d.LastError) }); err != nil {
		log.Error("cannot put a held delivery back; it is retried when its lease runs out", "err", err)
	}
}

// record writes an attempt's outcome: delivered, retried later, or failed for good. holdUntil,
// when set, is when the destination that asked us to slow down takes mail again.
func (q *Queue) record(log attemptLog, d store.Delivery, sendErr error, start time.Time, note *Note, holdUntil time.Time) {
	now := q.Now()
	ms := time.Since(start).Milliseconds()
	res := Outcome(sendErr)
	if note != nil {
		if note.Remote != "" {
			log = log.With("remote", note.Remote, "tls", cmp.Or(note.TLS, "none"))
		}
		if note.Source != "" {
			log = log.With("source", note.Source)
		}
		if note.Fallback != "" {
			log = log.With("tls_fallback", note.Fallback)
		}
	}
	if sendErr != nil {
		log = log.With("step", res.Step, "code", res.Code, "status", res.Status, "text", res.Text)
		metrics.DeliveryReplies.WithLabelValues(string(res.Step), replyClass(res)).Inc()
	}
	var update func(tx store.Tx) error
	switch {
	case sendErr == nil:
		metrics.Deliveries.WithLabelValues("delivered").Inc()
		log.Info("delivered", "ms", ms)
		update = func(tx store.Tx) error { return tx.Delivered(d) }
	case res.Permanent:
		metrics.Deliveries.WithLabelValues("failed").Inc()
		log.Warn("delivery failed", "err", sendErr, "ms", ms)
		update = func(tx store.Tx) error { return q.fail(tx, d, now, sendErr.Error(), res) }
	case now.Sub(d.Created) >= q.cfg.MaxAge:
		res.GaveUp = true
		reason := fmt.Sprintf("gave up after %d attempts over %s: %v", d.Attempts, now.Sub(d.Created).Round(time.Minute), sendErr)
		metrics.Deliveries.WithLabelValues("failed").Inc()
		log.Warn("delivery failed: retries exhausted", "err", sendErr, "attempts", d.Attempts, "age", now.Sub(d.Created).Round(time.Minute), "ms", ms)
		update = func(tx store.Tx) error { return q.fail(tx, d, now, reason, res) }
	default:
		next := now.Add(Backoff(d.Attempts, q.Jitter()))
		if !holdUntil.IsZero() {
			next = holdUntil // with the deliveries held for the same destination, in queue order
		}
		metrics.Deliveries.WithLabelValues("deferred").Inc()
		log.Info("delivery deferred", "err", sendErr, "retry", next.Format(time.RFC3339), "ms", ms)
		update = func(tx store.Tx) error { return tx.Retry(d, next, sendErr.Error()) }
	}
	if q.rec != nil {
		q.rec.add(outcomeUpdate{fn: update, log: log})
		return
	}
	if err := q.st.Update(update); err != nil {
		// The row stays leased; it is retried when the lease runs out or at the next start.
		log.Error("cannot record delivery outcome", "err", err)
	}
}

// replyClass is the metrics label of an outcome: "4xx", "5xx", or "none" without a reply.
func replyClass(r outcome.Result) string {
	switch r.Class() {
	case 4:
		return "4xx"
	case 5:
		return "5xx"
	}
	return "none"
}

// fail records d as failed for good: reason for the operator, r for bounce accounting.
func (q *Queue) fail(tx store.Tx, d store.Delivery, now time.Time, reason string, r outcome.Result) error {
	if err := tx.Fail(d, now, reason); err != nil {
		return err
	}
	if q.cfg.Failed != nil {
		return q.cfg.Failed(tx, d, r)
	}
	return nil
}

// attemptLog is the log of one attempt: the logger, and the attributes every line about the
// attempt carries, put on each line as it is written. slog's With formats its attributes at
// once, and again for each With after it: an attempt adds attributes four or five times and
// writes one or two lines.
type attemptLog struct {
	l     *slog.Logger
	attrs []any
}

// With returns the log with args added to every line.
func (a attemptLog) With(args ...any) attemptLog {
	return attemptLog{l: a.l, attrs: append(a.attrs[:len(a.attrs):len(a.attrs)], args...)}
}

func (a attemptLog) line(level slog.Level, msg string, args []any) {
	if !a.l.Enabled(context.Background(), level) {
		return
	}
	a.l.Log(context.Background(), level, msg, append(a.attrs[:len(a.attrs):len(a.attrs)], args...)...)
}

func (a attemptLog) Debug(msg string, args ...any) { a.line(slog.LevelDebug, msg, args) }
func (a attemptLog) Info(msg string, args ...any)  { a.line(slog.LevelInfo, msg, args) }
func (a attemptLog) Warn(msg string, args ...any)  { a.line(slog.LevelWarn, msg, args) }
func (a attemptLog) Error(msg string, args ...any) { a.line(slog.LevelError, msg, args) }

// messageID is the Message-ID of msg as written, for the log; "" when its header has none.
func messageID(msg []byte) string {
	for len(msg) > 0 {
		line, rest, _ := bytes.Cut(msg, []byte("\n"))
		line = bytes.TrimRight(line, "\r")
		if len(line) == 0 {
			return ""
		}
		if name, value, ok := bytes.Cut(line, []byte(":")); ok && bytes.EqualFold(bytes.TrimSpace(name), []byte("Message-ID")) {
			return strings.Trim(string(bytes.TrimSpace(value)), "<>")
		}
		msg = rest
	}
	return ""
}

// Backoff is the wait before the next attempt after attempt number n (1-based) failed: one
// minute, doubling each time, capped at four hours, with ±10% jitter (j in [0,1)) so that
// deliveries deferred together do not return together. Computed in floating point: an integer
// factor would truncate.
func Backoff(n int, j float64) time.Duration {
	const base, capped = float64(time.Minute), float64(4 * time.Hour)
	d := min(base*math.Pow(2, float64(max(n, 1)-1)), capped)
	return time.Duration(d * (0.9 + 0.2*j))
}

// temporaryError marks a failure that is worth retrying whatever the server answered (our
// own configuration is at fault, not the message).
type temporaryError struct{ err error }

func (e temporaryError) Error() string { return e.err.Error() }
func (e temporaryError) Unwrap() error { return e.err }

// Temporary marks err as a failure to retry, even if it wraps a 5xx reply.
func Temporary(err error) error { return temporaryError{err} }

// permanentError marks a failure that retrying cannot fix.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent marks err as a failure that retrying cannot fix.
func Permanent(err error) error { return permanentError{err} }

// IsPermanent reports whether err is permanent: marked so, or an SMTP 5xx reply not marked
// Temporary.
func IsPermanent(err error) bool {
	var t temporaryError
	if errors.As(err, &t) {
		return false
	}
	var p permanentError
	if errors.As(err, &p) {
		return true
	}
	var se *smtp.SMTPError
	return errors.As(err, &se) && se.Code >= 500 && se.Code < 600
}
