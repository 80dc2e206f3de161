package digest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
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
	st       store.Backend
	render   *Renderer
	links    Links
	sched    Schedule
	log      *slog.Logger
	Now      func() time.Time // tests replace it
	Enqueued func()           // wakes delivery
	// Web links the digests to the web reader, when there is one ([http] base_url).
	Web Web
	// Chores, when set, keep pace with each round (the server gives back there the database
	// pages a long round has read).
	Chores Chores
	mu     sync.Mutex // one round at a time
}

// Chores are the server's housekeeping that keeps pace with a round of digests without being
// the digests' business (chore.MappedPages gives back the database pages a long round reads).
type Chores interface {
	ListsHandedOut(n int) // before the round hands out its next list, when n lists have gone
	RoundOver(n int)      // when the round over n lists is over
}

// NewScheduler returns a Scheduler.
func NewScheduler(st store.Backend, r *Renderer, links Links, sched Schedule, log *slog.Logger) *Scheduler {
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

// SendDue sends every digest that is due now, on every list (list == "") or one. With force,
// every digest member gets what is new whatever the schedule (crewmail digest send -now).
func (s *Scheduler) SendDue(list string, force bool) (Sent, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var lists []string
	err := s.st.View(func(tx store.Tx) error {
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
		if s.Chores != nil {
			s.Chores.ListsHandedOut(i)
		}
		work <- l
	}
	close(work)
	wg.Wait()
	if s.Chores != nil {
		s.Chores.RoundOver(len(lists))
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
	// catchUp: the digest of what came while the member was away (store.Member.AwayUntil),
	// sent once when that ends, whatever her mode.
	catchUp bool
	hers    map[uint64]bool // for a catch-up: the threads she wrote in, up to 500 posts back
	read    map[uint64]bool // the posts after her cursor she has read over IMAP (unless ShowRead)
}

// dueList is what is due on one list, as read in one transaction: the members whose digest is
// due and what is new since the earliest of their cursors.
type dueList struct {
	list  store.List
	zone  *time.Location
	dues  []due
	posts []post
	// back are the members whose time away is over (store.Member.AwayUntil).
	back []string
	// mutes: for each thread a post started (post.Origin), the members who muted it or follow
	// it (IDs): a followed thread's posts went to its followers at once.
	mutes map[uint64]map[uint64]bool
}

// composed is one digest and the members it goes to: members with the same cursor, period and
// mutes get the same digest, composed once, stored once, delivered to each.
type composed struct {
	members []due
	msgs    [][]byte // the digest's parts; none when nothing is new for them
	count   int      // posts in it
}

// sendList sends the digests of one list that are due: it reads what is due, composes the
// digests, and commits their outbox rows with the members' moved cursors.
func (s *Scheduler) sendList(list string, force bool) (Sent, error) {
	now := s.Now()
	var d dueList
	read := func() error {
		return s.st.View(func(tx store.Tx) error {
			var err error
			d, err = s.readDue(tx, list, now, force)
			return err
		})
	}
	err := read()
	if err == nil && len(d.back) > 0 {
		if err = s.st.Update(func(tx store.Tx) error { return comeBack(tx, list, d.back, now) }); err == nil {
			err = read()
		}
	}
	if err != nil || len(d.dues) == 0 {
		return Sent{}, err
	}
	digests, err := s.compose(d, now)
	if err != nil {
		return Sent{}, err
	}
	var sent Sent
	err = s.st.Update(func(tx store.Tx) error {
		var err error
		sent, err = s.commit(tx, d, digests, now)
		return err
	})
	return sent, err
}

// readDue reads what is due on list at now (with force, every digest member's digest is): no
// dues when the list is gone. A member whose cursor cannot be read is left out, with a log line.
func (s *Scheduler) readDue(tx store.Tx, list string, now time.Time, force bool) (dueList, error) {
	var d dueList
	var err error
	if d.list, err = tx.List(list); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return dueList{}, nil // deleted since the round began
		}
		return dueList{}, err
	}
	l := d.list
	d.zone = s.Zone(l)
	members, err := tx.Members(l.Address)
	if err != nil {
		return dueList{}, err
	}
	last, err := tx.LastSeq(l.Address)
	if err != nil {
		return dueList{}, err
	}
	from := last
	for _, m := range members {
		if !m.AwayUntil.IsZero() {
			if !now.Before(m.AwayUntil) {
				d.back = append(d.back, m.Address)
			}
			continue // away: nothing goes to her; a digest member's cursor waits
		}
		if m.CatchUp && m.Paused.IsZero() {
			// What came while she was away: after her cursor (a digest member's waited),
			// else after the newest post when she went.
			c := store.Cursor{Seq: m.AwayFrom}
			period := vocab.Daily
			if m.Mode.Digest() {
				if c, _, err = tx.Cursor(l.Address, m.Address); err != nil {
					s.log.Error("catch-up digest skipped: cannot read her digest cursor", "list", l.Address, "member", m.Address, "err", err)
					continue
				}
				period = m.Mode
			}
			hers := map[uint64]bool{}
			if err := tx.PostsAfter(l.Address, c.Seq-min(c.Seq, 500), func(p store.Post, _ []byte) error {
				if p.From == m.Address {
					hers[p.Thread] = true
				}
				return nil
			}); err != nil {
				return dueList{}, err
			}
			d.dues = append(d.dues, due{member: m, cursor: c, run: now, period: period, catchUp: true, hers: hers})
			from = min(from, c.Seq)
			continue
		}
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
		run := s.sched.last(m.Mode, now, d.zone)
		handled := c.Run
		if handled.IsZero() {
			handled = m.Added // a new digest member's first digest is the next one due
		}
		if force {
			run = now
		} else if !handled.Before(run) {
			continue
		}
		d.dues = append(d.dues, due{member: m, cursor: c, run: run, period: m.Mode})
		from = min(from, c.Seq)
	}
	if len(d.dues) == 0 || from >= last {
		return d, nil
	}
	if d.posts, err = readPosts(tx, l, from, s.links, d.zone); err != nil {
		return dueList{}, err
	}
	for i := range d.dues {
		if d.dues[i].read, err = readByMember(tx, l.Address, d.dues[i].member, d.dues[i].cursor.Seq); err != nil {
			return dueList{}, err
		}
	}
	d.mutes = map[uint64]map[uint64]bool{}
	for _, p := range d.posts {
		if _, ok := d.mutes[p.Origin]; !ok { // mutes are about where a post started
			m, err := leftOut(tx, l.Address, p.Post)
			if err != nil {
				return dueList{}, err
			}
			d.mutes[p.Origin] = m
		}
	}
	return d, nil
}

// readByMember are the posts of list after seq that m has read over IMAP (\Seen), and so sees
// as one line in her digest; none when she asked to see them in full (Member.ShowRead).
func readByMember(tx store.IMAPAccess, list string, m store.Member, after uint64) (map[uint64]bool, error) {
	if m.ShowRead {
		return nil, nil
	}
	var read map[uint64]bool
	err := tx.FlagsOf(list, m.ID, func(seq uint64, flags byte) error {
		if seq > after && flags&store.FlagSeen != 0 {
			if read == nil {
				read = map[uint64]bool{}
			}
			read[seq] = true
		}
		return nil
	})
	return read, err
}

// leftOut are the members whose digests leave post p out: those who muted its conversation,
// and those who follow it (they had its posts at once).
func leftOut(tx store.Threads, list string, p store.Post) (map[uint64]bool, error) {
	m, err := tx.Muted(list, p)
	if err != nil {
		return nil, err
	}
	f, err := tx.Followed(list, p)
	if err != nil || len(f) == 0 {
		return m, err
	}
	if m == nil {
		m = map[uint64]bool{}
	}
	maps.Copy(m, f)
	return m, nil
}

// compose builds the digests of d at now, one for each group of members with the same cursor,
// period and mutes, in the order their first member was read. It reads and writes nothing.
func (s *Scheduler) compose(d dueList, now time.Time) ([]*composed, error) {
	groups := map[string]*composed{}
	var out []*composed
	for _, m := range d.dues {
		var muted []string
		for th, who := range d.mutes {
			if who[m.member.ID] {
				muted = append(muted, fmt.Sprint(th))
			}
		}
		slices.Sort(muted)
		self := "" // a member who asked not to get her own posts back has a digest of her own
		if m.member.NoOwnPosts {
			self = m.member.Address
		}
		if m.catchUp { // hers alone: threads she took part in come first
			self += "/catch-up:" + m.member.Address
		}
		var read []string // what she read already is one line in her digest
		for seq := range m.read {
			read = append(read, fmt.Sprint(seq))
		}
		slices.Sort(read)
		key := fmt.Sprintf("%d/%s/%s/%s/%s", m.cursor.Seq, m.period, strings.Join(muted, ","), self, strings.Join(read, ","))
		g, ok := groups[key]
		if !ok {
			g = &composed{}
			groups[key] = g
			out = append(out, g)
			var mine []post
			for _, p := range d.posts {
				if p.Seq > m.cursor.Seq && !d.mutes[p.Origin][m.member.ID] && (!m.member.NoOwnPosts || p.From != m.member.Address) {
					mine = append(mine, p)
				}
			}
			g.count = len(mine)
			if len(mine) > 0 {
				dg := build(d.list, m.period, mine, m.cursor.Seq, s.links, d.zone, now, m.read)
				if m.catchUp {
					catchUp(&dg, m.hers)
				}
				s.Web.link(&dg)
				msgs, err := s.render.Build(dg, s.addresses(d.list))
				if err != nil {
					return nil, err
				}
				g.msgs = msgs
			}
		}
		g.members = append(g.members, m)
	}
	return out, nil
}

// commit puts digests in the outbox, one row per member and part, and moves each member's
// cursor past what was read, in tx: a member whose cursor is no longer where it was read (a
// round that raced this one already handled her) is left out.
func (s *Scheduler) commit(tx store.Tx, d dueList, digests []*composed, now time.Time) (Sent, error) {
	var sent Sent
	l := d.list
	// Another process on the same database committing this list's digests now: it sends them.
	if mine, err := store.TryJob(tx, "digest "+l.Address); err != nil || !mine {
		return Sent{}, err
	}
	last, err := tx.LastSeq(l.Address)
	if err != nil {
		return Sent{}, err
	}
	for _, g := range digests {
		var still []due
		for _, m := range g.members {
			if m.catchUp { // still due: no racing round sent it
				if mem, err := tx.Member(l.Address, m.member.Address); err == nil && mem.CatchUp && mem.ID == m.member.ID {
					still = append(still, m)
				} else if err != nil && !errors.Is(err, store.ErrNotFound) {
					return Sent{}, err
				}
				continue
			}
			c, _, err := tx.Cursor(l.Address, m.member.Address)
			if err != nil {
				return Sent{}, err
			}
			if c == m.cursor {
				still = append(still, m)
			}
		}
		if len(still) == 0 {
			continue
		}
		var blobs []uint64
		for _, msg := range g.msgs {
			id, err := tx.PutBlob(msg, len(still))
			if err != nil {
				return Sent{}, err
			}
			blobs = append(blobs, id)
		}
		for _, m := range still {
			for _, id := range blobs {
				if _, err := tx.Enqueue(store.Delivery{List: l.Address, Blob: id, From: s.links.BounceAddress(l.Address, m.member.ID), To: m.member.Address, Member: m.member.ID, Created: now.UTC()}); err != nil {
					return Sent{}, err
				}
			}
			if m.catchUp {
				mem, err := tx.Member(l.Address, m.member.Address)
				if err != nil {
					return Sent{}, err
				}
				mem.CatchUp, mem.AwayFrom = false, 0
				if err := tx.PutMember(l.Address, mem); err != nil {
					return Sent{}, err
				}
				if !mem.Mode.Digest() {
					if len(blobs) > 0 {
						sent.Members++
					}
					continue
				}
			}
			seq := m.cursor.Seq
			if g.count > 0 || seq < last {
				seq = max(seq, lastOf(d.posts))
			}
			run := m.run
			if m.catchUp { // her place in the schedule stays: the next digest comes when due
				if c, _, err := tx.Cursor(l.Address, m.member.Address); err == nil {
					run = c.Run
				}
			}
			if err := tx.PutCursor(l.Address, m.member.Address, store.Cursor{Seq: seq, Run: run}); err != nil {
				return Sent{}, err
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
	return sent, nil
}

func lastOf(posts []post) uint64 {
	if len(posts) == 0 {
		return 0
	}
	return posts[len(posts)-1].Seq
}

func (s *Scheduler) addresses(l store.List) Addresses {
	return Addresses{
		// To: each member's own address (lists.Compose), so that Reply All does not copy the
		// list; replies go to crew+digest@, and one naming the digest's Message-ID is known.
		From: l.Address, ReplyTo: s.links.Address(l.Address, "digest"),
		MessageID: func() string { return s.links.DigestMessageID(l.Address) },
		// List-Unsubscribe is each member's own (RFC 8058), added at delivery (lists.Compose).
		List: listcopy.Block{Name: l.Name, Address: l.Address, Post: true, Help: s.links.Address(l.Address, "help"), Precedence: true},
	}
}

// Preview is the digest member would get now from list (period, vocab.Daily or vocab.Weekly,
// when member is ""): nothing is sent and no cursor moves.
func (s *Scheduler) Preview(list string, period vocab.Mode, member string) (Digest, error) {
	var d Digest
	err := s.st.View(func(tx store.Tx) error {
		l, err := tx.List(list)
		if err != nil {
			return fmt.Errorf("there is no list %s", list)
		}
		zone := s.Zone(l)
		after := uint64(0)
		var muted, read map[uint64]bool
		var id uint64
		self := "" // the member's own address when she asked not to get her own posts back
		if member != "" {
			m, err := tx.Member(list, member)
			if err != nil {
				return fmt.Errorf("%s is not a member of %s", member, list)
			}
			id = m.ID
			if m.NoOwnPosts {
				self = m.Address
			}
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
			if read, err = readByMember(tx, list, m, after); err != nil {
				return err
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
		posts, err := readPosts(tx, l, after, s.links, zone)
		if err != nil {
			return err
		}
		var mine []post
		for _, p := range posts {
			if self != "" && p.From == self {
				continue
			}
			if member != "" {
				if muted, err = leftOut(tx, list, p.Post); err != nil {
					return err
				} else if muted[id] {
					continue
				}
			}
			mine = append(mine, p)
		}
		d = build(l, period, mine, after, s.links, zone, s.Now(), read)
		s.Web.link(&d)
		if d.Archive = ""; s.Web.List != nil {
			d.Archive = s.Web.List(list)
		}
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

// comeBack ends the time away of the members of list named in back whose AwayUntil is past at
// now: they receive the list again, and a catch-up digest is due for each who gets mail.
func comeBack(tx store.Tx, list string, back []string, now time.Time) error {
	for _, addr := range back {
		m, err := tx.Member(list, addr)
		if errors.Is(err, store.ErrNotFound) {
			continue
		} else if err != nil {
			return err
		}
		if m.AwayUntil.IsZero() || now.Before(m.AwayUntil) {
			continue // changed since it was read
		}
		m.AwayUntil = time.Time{}
		m.CatchUp = m.Mode != vocab.NoMail
		if err := tx.PutMember(list, m); err != nil {
			return err
		}
	}
	return nil
}

// catchUp makes dg a catch-up digest: titled as what came while its reader was away, the
// conversations she took part in (threads, those she wrote in) first.
func catchUp(dg *Digest, threads map[uint64]bool) {
	hers := map[string]bool{}
	for th := range threads {
		hers[fmt.Sprintf("t%d", th)] = true
	}
	slices.SortStableFunc(dg.Threads, func(a, b Thread) int {
		switch {
		case hers[a.Anchor] && !hers[b.Anchor]:
			return -1
		case hers[b.Anchor] && !hers[a.Anchor]:
			return 1
		}
		return 0
	})
	dg.Title = fmt.Sprintf("While you were away: %s, %s", count(len(dg.Threads), "conversation"), count(dg.Messages, "message"))
	dg.Subject = "[" + dg.ListName + "] " + dg.Title
}
