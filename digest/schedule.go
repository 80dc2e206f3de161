package digest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"crewmail/internal/listcopy"
	"crewmail/internal/metrics"
	"crewmail/internal/vocab"
	"crewmail/store"
)

// Schedule is when digests are due: daily at a time of day, weekly on a day at that time, in
// a list's time zone.
type Schedule struct {
	DailyAt  string       // "HH:MM"
	WeeklyOn time.Weekday // the day weekly digests go out
	Zone     *time.Location
}

// last is the latest time at or before now that a digest of period was due, in zone.
func (c Schedule) last(period vocab.Mode, now time.Time, zone *time.Location) time.Time {
	at, err := time.Parse("15:04", c.DailyAt)
	if err != nil {
		at = time.Date(0, 1, 1, 8, 0, 0, 0, time.UTC)
	}
	n := now.In(zone)
	t := time.Date(n.Year(), n.Month(), n.Day(), at.Hour(), at.Minute(), 0, 0, zone)
	if t.After(n) {
		t = t.AddDate(0, 0, -1)
	}
	if period == vocab.Weekly {
		for t.Weekday() != c.WeeklyOn {
			t = t.AddDate(0, 0, -1)
		}
	}
	return t
}

// Scheduler sends each digest member the digest that is due, exactly once: the digest goes in
// the outbox in the same transaction that moves the member's cursor past what it holds.
type Scheduler struct {
	st       *store.Store
	render   *Renderer
	links    Links
	sched    Schedule
	log      *slog.Logger
	Now      func() time.Time // tests replace it
	Enqueued func()           // wakes delivery
	mu       sync.Mutex       // one round at a time
	// failCommit, when set, fails each list's commit after its digests are written (tests).
	failCommit error
}

// NewScheduler returns a Scheduler.
func NewScheduler(st *store.Store, r *Renderer, links Links, sched Schedule, log *slog.Logger) *Scheduler {
	if sched.Zone == nil {
		sched.Zone = time.Local
	}
	return &Scheduler{st: st, render: r, links: links, sched: sched, log: log, Now: time.Now, Enqueued: func() {}}
}

// Zone is the time zone of list l's digests.
func (s *Scheduler) Zone(l store.List) *time.Location {
	if l.Timezone != "" {
		if z, err := time.LoadLocation(l.Timezone); err == nil {
			return z
		}
	}
	return s.sched.Zone
}

// Sent says what a round of digests did.
type Sent struct {
	Lists, Digests, Members, Messages int
}

// releaseEvery is how many lists a round goes through between giving back the database pages
// it has read (store.ReleaseMapped): a round over thousands of lists reads the whole archive,
// and its resident set should be what it holds, not the size of the file.
const releaseEvery = 256

func (s *Scheduler) releaseMapped() {
	if err := s.st.ReleaseMapped(); err != nil {
		s.log.Warn("cannot give back mapped database pages", "err", err)
	}
}

// SendDue sends every digest that is due now, on every list (list == "") or one. With force,
// every digest member gets what is new whatever the schedule (crewmail digest send -now).
func (s *Scheduler) SendDue(list string, force bool) (Sent, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var lists []string
	err := s.st.View(func(tx *store.Tx) error {
		if list != "" {
			if _, err := tx.List(list); err != nil {
				return fmt.Errorf("there is no list %s", list)
			}
			lists = []string{list}
			return nil
		}
		var err error
		lists, err = tx.ListAddresses()
		return err
	})
	if err != nil {
		return Sent{}, err
	}
	// Lists are composed side by side; their commits share fsyncs (store's group commit).
	var total Sent
	var mu sync.Mutex
	var firstErr error
	work := make(chan string)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for l := range work {
				sent, err := s.sendList(l, force)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = fmt.Errorf("digests of %s: %w", l, err)
				}
				total.Digests += sent.Digests
				total.Members += sent.Members
				total.Messages += sent.Messages
				if sent.Members > 0 {
					total.Lists++
				}
				mu.Unlock()
			}
		})
	}
	for i, l := range lists {
		if i > 0 && i%releaseEvery == 0 {
			s.releaseMapped()
		}
		work <- l
	}
	close(work)
	wg.Wait()
	if len(lists) > releaseEvery {
		s.releaseMapped()
	}
	metrics.Digests.Add(float64(total.Digests))
	metrics.DigestDeliveries.Add(float64(total.Members))
	if total.Members > 0 {
		s.Enqueued()
		s.log.Info("digests sent", "lists", total.Lists, "digests", total.Digests, "members", total.Members)
	}
	return total, firstErr
}

// due is one member whose digest is due.
type due struct {
	member store.Member
	cursor store.Cursor
	run    time.Time // the schedule time this digest answers
	period vocab.Mode
}

// sendList sends the digests of one list that are due.
func (s *Scheduler) sendList(list string, force bool) (Sent, error) {
	now := s.Now()
	var l store.List
	var zone *time.Location
	var dues []due
	var posts []post
	err := s.st.View(func(tx *store.Tx) error {
		var err error
		if l, err = tx.List(list); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return nil // deleted since the round began
			}
			return err
		}
		zone = s.Zone(l)
		members, err := tx.Members(l.Address)
		if err != nil {
			return err
		}
		last, err := tx.LastSeq(l.Address)
		if err != nil {
			return err
		}
		from := last
		for _, m := range members {
			if !m.Mode.Digest() || !m.Paused.IsZero() {
				continue // paused for bouncing: their cursor waits, nothing is lost
			}
			c, _, err := tx.Cursor(l.Address, m.Address)
			if err != nil {
				// Without her cursor there is no telling what she has had: she gets nothing
				// (rather than the whole archive) until it is mended; the others get theirs.
				s.log.Error("digest member skipped: cannot read her digest cursor", "list", l.Address, "member", m.Address, "err", err)
				continue
			}
			run := s.sched.last(m.Mode, now, zone)
			handled := c.Run
			if handled.IsZero() {
				handled = m.Added // a new digest member's first digest is the next one due
			}
			if force {
				run = now
			} else if !handled.Before(run) {
				continue
			}
			dues = append(dues, due{member: m, cursor: c, run: run, period: m.Mode})
			from = min(from, c.Seq)
		}
		if len(dues) == 0 || from >= last {
			return nil
		}
		posts, err = readPosts(tx, l.Address, from, s.links, zone)
		return err
	})
	if err != nil || len(dues) == 0 {
		return Sent{}, err
	}
	// Members with the same cursor, period and mutes get the same digest: composed once, stored
	// once, delivered to each.
	type group struct {
		key     string
		members []due
		msgs    [][]byte
		count   int
	}
	groups := map[string]*group{}
	var keys []string
	var mutes map[uint64]map[uint64]bool
	if err := s.st.View(func(tx *store.Tx) error {
		mutes = map[uint64]map[uint64]bool{}
		for _, p := range posts {
			if _, ok := mutes[p.Origin]; !ok { // mutes are about where a post started
				m, err := tx.Muted(l.Address, p.Post)
				if err != nil {
					return err
				}
				mutes[p.Origin] = m
			}
		}
		return nil
	}); err != nil {
		return Sent{}, err
	}
	for _, d := range dues {
		var muted []string
		for th, who := range mutes {
			if who[d.member.ID] {
				muted = append(muted, fmt.Sprint(th))
			}
		}
		slices.Sort(muted)
		key := fmt.Sprintf("%d/%s/%s", d.cursor.Seq, d.period, strings.Join(muted, ","))
		g, ok := groups[key]
		if !ok {
			g = &group{key: key}
			groups[key] = g
			keys = append(keys, key)
			var mine []post
			for _, p := range posts {
				if p.Seq > d.cursor.Seq && !mutes[p.Origin][d.member.ID] {
					mine = append(mine, p)
				}
			}
			g.count = len(mine)
			if len(mine) > 0 {
				dg := build(l, d.period, mine, d.cursor.Seq, s.links, zone, now)
				msgs, err := s.render.Build(dg, s.addresses(l))
				if err != nil {
					return Sent{}, err
				}
				g.msgs = msgs
			}
		}
		g.members = append(g.members, d)
	}
	var sent Sent
	err = s.st.Update(func(tx *store.Tx) error {
		sent = Sent{}
		last, err := tx.LastSeq(l.Address)
		if err != nil {
			return err
		}
		for _, key := range keys {
			g := groups[key]
			// Only members whose cursor is still where it was read: a round that raced this one
			// (a second `digest send`) already handled the others.
			var still []due
			for _, d := range g.members {
				c, _, err := tx.Cursor(l.Address, d.member.Address)
				if err != nil {
					return err
				}
				if c == d.cursor {
					still = append(still, d)
				}
			}
			if len(still) == 0 {
				continue
			}
			var blobs []uint64
			for _, msg := range g.msgs {
				id, err := tx.PutBlob(msg, len(still))
				if err != nil {
					return err
				}
				blobs = append(blobs, id)
			}
			for _, d := range still {
				for _, id := range blobs {
					if _, err := tx.Enqueue(store.Delivery{List: l.Address, Blob: id, From: s.links.BounceAddress(l.Address, d.member.ID), To: d.member.Address, Member: d.member.ID, Created: now.UTC()}); err != nil {
						return err
					}
				}
				seq := d.cursor.Seq
				if g.count > 0 || seq < last {
					seq = max(seq, lastOf(posts))
				}
				if err := tx.PutCursor(l.Address, d.member.Address, store.Cursor{Seq: seq, Run: d.run}); err != nil {
					return err
				}
				if len(blobs) > 0 {
					sent.Members++
				}
			}
			if len(blobs) > 0 {
				sent.Digests++
				sent.Messages += g.count
			}
		}
		return s.failCommit
	})
	return sent, err
}

func lastOf(posts []post) uint64 {
	if len(posts) == 0 {
		return 0
	}
	return posts[len(posts)-1].Seq
}

func (s *Scheduler) addresses(l store.List) Addresses {
	return Addresses{
		From: l.Address, To: l.Address, ReplyTo: s.links.Address(l.Address, "digest"),
		// List-Unsubscribe is each member's own (RFC 8058), added at delivery (lists.Compose).
		List: listcopy.Block{Name: l.Name, Address: l.Address, Post: true, Help: s.links.Address(l.Address, "help"), Precedence: true},
	}
}

// Preview is the digest member would get now from list (period, vocab.Daily or vocab.Weekly,
// when member is ""): nothing is sent and no cursor moves.
func (s *Scheduler) Preview(list string, period vocab.Mode, member string) (Digest, error) {
	var d Digest
	err := s.st.View(func(tx *store.Tx) error {
		l, err := tx.List(list)
		if err != nil {
			return fmt.Errorf("there is no list %s", list)
		}
		zone := s.Zone(l)
		after := uint64(0)
		var muted map[uint64]bool
		var id uint64
		if member != "" {
			m, err := tx.Member(list, member)
			if err != nil {
				return fmt.Errorf("%s is not a member of %s", member, list)
			}
			id = m.ID
			c, ok, err := tx.Cursor(list, member)
			if err != nil {
				return err
			}
			if ok {
				after = c.Seq
			}
			if m.Mode.Digest() {
				period = m.Mode
			}
		} else {
			since := s.Now().Add(-24 * time.Hour)
			if period == vocab.Weekly {
				since = s.Now().Add(-7 * 24 * time.Hour)
			}
			if after, err = tx.LastSeq(list); err != nil {
				return err
			}
			if err := tx.PostsAfter(list, 0, func(p store.Post, _ []byte) error {
				if !p.Received.Before(since) && p.Seq <= after {
					after = p.Seq - 1
				}
				return nil
			}); err != nil {
				return err
			}
		}
		posts, err := readPosts(tx, list, after, s.links, zone)
		if err != nil {
			return err
		}
		var mine []post
		for _, p := range posts {
			if member != "" {
				if muted, err = tx.Muted(list, p.Post); err != nil {
					return err
				} else if muted[id] {
					continue
				}
			}
			mine = append(mine, p)
		}
		d = build(l, period, mine, after, s.links, zone, s.Now())
		return nil
	})
	return d, err
}

// Run sends due digests every interval until ctx is done, and once at once: a server that was
// down at a scheduled time sends what it missed when it starts.
func (s *Scheduler) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := s.SendDue("", false); err != nil {
			s.log.Error("cannot send digests", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Text is the text part of d as it would be sent.
func (s *Scheduler) Text(d Digest) (string, error) { return s.render.Text(d) }

// HTML is the HTML part of d as it would be sent.
func (s *Scheduler) HTML(d Digest) (string, error) { return s.render.HTML(d) }
