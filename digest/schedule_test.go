package digest

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"

	"crewmail/internal/chore"
	"crewmail/internal/vocab"
	"crewmail/lists"
	"crewmail/store"
	"crewmail/templates"
)

const crew = "crew@lists.example.test"

// world is a store with a list, the lists service on it and a scheduler, all on one clock.
type world struct {
	t     *testing.T
	st    *store.Store
	svc   *lists.Service
	sched *Scheduler
	now   time.Time
	n     int
}

func newWorld(t *testing.T, start time.Time) *world {
	t.Helper()
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	tpl, err := templates.New("")
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	w := &world{t: t, st: st, now: start}
	w.svc = lists.New(st, tpl, lists.Config{Hostname: "lists.example.test"}, log)
	w.svc.Now = func() time.Time { return w.now }
	r := &Renderer{Templates: tpl, Hostname: "lists.example.test", Now: func() time.Time { return w.now }}
	w.sched = NewScheduler(st, r, w.svc, Schedule{DailyAt: "08:00", WeeklyOn: time.Monday, Zone: time.UTC}, log)
	w.sched.Now = func() time.Time { return w.now }
	if _, err := w.svc.CreateList(crew, lists.ListOptions{Name: "Garden crew", Post: "anyone"}); err != nil {
		t.Fatal(err)
	}
	return w
}

// post archives a message from author, replying to parent when it is not "".
func (w *world) post(author, subject, parent string) string {
	w.t.Helper()
	w.n++
	id := fmt.Sprintf("m%d@example.test", w.n)
	h := ""
	if parent != "" {
		h = "In-Reply-To: <" + parent + ">\r\n"
	}
	msg := fmt.Appendf(nil, "From: %s\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <%s>\r\n%s\r\nText %d of %s.\r\n", author, subject, w.now.Format(time.RFC1123Z), id, h, w.n, subject)
	tgt, err := w.svc.Route(crew)
	if err != nil {
		w.t.Fatal(err)
	}
	if _, err := w.svc.Accept(lists.Envelope{From: "a@example.test", Targets: []lists.Target{tgt}}, msg); err != nil {
		w.t.Fatal(err)
	}
	return id
}

// at moves the clock to "Mon 08:00"-style times of the week of 23 November 2026 (a Monday).
func at(day int, hhmm string) time.Time {
	t, _ := time.Parse("15:04", hhmm)
	return time.Date(2026, 11, 23+day, t.Hour(), t.Minute(), 0, 0, time.UTC)
}

// digests takes the digest mails out of the outbox (delivering them) and returns their text
// parts by recipient.
func (w *world) digests() map[string][]string {
	w.t.Helper()
	out := map[string][]string{}
	err := w.st.Update(func(tx store.Tx) error {
		rows, err := tx.ClaimDue(w.now.Add(time.Hour), time.Minute, 10000)
		if err != nil {
			return err
		}
		for _, d := range rows {
			if d.Blob != 0 {
				msg, err := tx.Blob(d.Blob)
				if err != nil {
					return err
				}
				out[d.To] = append(out[d.To], textPart(w.t, msg))
			}
			if err := tx.Delivered(d); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		w.t.Fatal(err)
	}
	return out
}

func textPart(t *testing.T, msg []byte) string {
	t.Helper()
	r, err := mail.CreateReader(bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	subject, _ := r.Header.Subject()
	for {
		p, err := r.NextPart()
		if err != nil {
			t.Fatalf("no text part: %v", err)
		}
		if ct, _, _ := p.Header.(*mail.InlineHeader).ContentType(); ct == "text/plain" {
			b, _ := io.ReadAll(p.Body)
			return "Subject: " + subject + "\n" + string(b)
		}
	}
}

func (w *world) send() Sent {
	w.t.Helper()
	sent, err := w.sched.SendDue("", false)
	if err != nil {
		w.t.Fatal(err)
	}
	return sent
}

func TestScheduleLast(t *testing.T) {
	c := Schedule{DailyAt: "08:00", WeeklyOn: time.Monday}
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip("no time zone data")
	}
	for _, tc := range []struct {
		period vocab.Mode
		now    time.Time
		zone   *time.Location
		want   time.Time
	}{
		{"daily", at(1, "07:59"), time.UTC, at(0, "08:00")},
		{"daily", at(1, "08:00"), time.UTC, at(1, "08:00")},
		{"weekly", at(0, "07:00"), time.UTC, at(-7, "08:00")},
		{"weekly", at(3, "12:00"), time.UTC, at(0, "08:00")},
		{"daily", at(1, "07:30"), berlin, at(1, "07:00")}, // 08:00 in Berlin is 07:00 UTC in November
	} {
		if got := c.last(tc.period, tc.now, tc.zone); !got.Equal(tc.want) {
			t.Errorf("last %s at %s (%s) = %s, want %s", tc.period, tc.now, tc.zone, got.UTC(), tc.want)
		}
	}
}

// TestDigestsOverAWeek drives a day and a week with the clock: digests come at their time,
// exactly once, with every post once, none when nothing is new, and a missed schedule sends
// one digest when the server is back.
func TestDigestsOverAWeek(t *testing.T) {
	w := newWorld(t, at(0, "06:00"))
	for addr, mode := range map[string]string{"alice@example.test": "daily", "bob@example.test": "weekly", "carol@example.test": "each"} {
		if _, err := w.svc.AddMember(crew, addr, mode, false); err != nil {
			t.Fatal(err)
		}
	}
	seeds := w.post("Ann <ann@example.test>", "Seeds", "")
	w.post("Ben <ben@example.test>", "Re: Seeds", seeds)
	w.post("Ann <ann@example.test>", "Tomatoes", "")
	w.digests() // carol's copies

	w.now = at(0, "07:59")
	if sent := w.send(); sent.Members != 0 {
		t.Fatalf("digests before their time: %+v", sent)
	}
	w.now = at(0, "08:00")
	w.send()
	got := w.digests()
	if len(got) != 2 || len(got["alice@example.test"]) != 1 || len(got["bob@example.test"]) != 1 {
		t.Fatalf("Monday 08:00: digests %v", keys(got))
	}
	a := got["alice@example.test"][0]
	for _, want := range []string{"Subject: [Garden crew] Daily digest: 2 conversations, 3 messages", "Seeds", "Tomatoes", "Text 2 of Re: Seeds."} {
		if !strings.Contains(a, want) {
			t.Errorf("alice's digest lacks %q:\n%s", want, a)
		}
	}
	if !strings.Contains(got["bob@example.test"][0], "Weekly digest: 2 conversations, 3 messages") {
		t.Errorf("bob's digest:\n%s", got["bob@example.test"][0])
	}
	w.now = at(0, "09:00")
	if sent := w.send(); sent.Members != 0 {
		t.Errorf("a second round the same day sent %+v", sent)
	}

	// Tuesday: a reply in an old thread. Then the server is down Wednesday and Thursday
	// morning; back at noon Thursday it sends alice one digest, not two.
	w.now = at(1, "10:00")
	w.post("Ben <ben@example.test>", "Re: Seeds", seeds)
	w.now = at(3, "12:00")
	w.send()
	got = w.digests()
	if len(got["alice@example.test"]) != 1 || len(got["bob@example.test"]) != 0 {
		t.Fatalf("after the missed mornings: %v", keys(got))
	}
	if a := got["alice@example.test"][0]; !strings.Contains(a, "1 conversation, 1 message") || strings.Contains(a, "Tomatoes") {
		t.Errorf("the missed digest repeats or lacks posts:\n%s", a)
	}
	w.now = at(4, "08:00")
	if sent := w.send(); sent.Members != 0 {
		t.Errorf("a digest with nothing new: %+v", sent)
	}

	// Next Monday bob gets the week's new post; alice nothing, she had it.
	w.now = at(7, "08:00")
	w.send()
	got = w.digests()
	if len(got["bob@example.test"]) != 1 || len(got["alice@example.test"]) != 0 {
		t.Fatalf("next Monday: %v", keys(got))
	}
	if b := got["bob@example.test"][0]; !strings.Contains(b, "1 conversation, 1 message") {
		t.Errorf("bob's second digest:\n%s", b)
	}
}

// TestDigestLeavesOutMutedThreads and shares one stored message between members who get the
// same digest.
func TestDigestLeavesOutMutedThreads(t *testing.T) {
	w := newWorld(t, at(0, "06:00"))
	for _, addr := range []string{"alice@example.test", "bob@example.test", "dora@example.test"} {
		if _, err := w.svc.AddMember(crew, addr, "daily", false); err != nil {
			t.Fatal(err)
		}
	}
	noisy := w.post("Ann <ann@example.test>", "Noisy", "")
	w.post("Ann <ann@example.test>", "Quiet", "")
	var thread uint64
	err := w.st.Update(func(tx store.Tx) error {
		seq, _, err := tx.MessageID(crew, noisy)
		if err != nil {
			return err
		}
		m, err := tx.Member(crew, "alice@example.test")
		if err != nil {
			return err
		}
		thread = seq
		return tx.Mute(crew, thread, m.ID)
	})
	if err != nil {
		t.Fatal(err)
	}
	w.now = at(0, "08:00")
	sent := w.send()
	if sent.Digests != 2 || sent.Members != 3 {
		t.Errorf("sent %+v, want 2 distinct digests for 3 members", sent)
	}
	got := w.digests()
	if a := got["alice@example.test"][0]; strings.Contains(a, "Noisy") || !strings.Contains(a, "Quiet") {
		t.Errorf("alice's digest shows the muted thread:\n%s", a)
	}
	if b := got["bob@example.test"][0]; !strings.Contains(b, "Noisy") {
		t.Errorf("bob's digest lacks a thread he did not mute:\n%s", b)
	}
}

// TestDigestAndCursorCommitTogether: a round that fails before its commit leaves neither a
// digest nor a moved cursor; the next round sends exactly one.
func TestDigestAndCursorCommitTogether(t *testing.T) {
	w := newWorld(t, at(0, "06:00"))
	if _, err := w.svc.AddMember(crew, "alice@example.test", "daily", false); err != nil {
		t.Fatal(err)
	}
	w.post("Ann <ann@example.test>", "Seeds", "")
	w.now = at(0, "08:00")
	if err := w.st.Faults().FailCommits(1, fmt.Errorf("the disk is gone")); err != nil {
		t.Fatal(err)
	}
	if _, err := w.sched.SendDue("", false); err == nil {
		t.Fatal("a failed commit went unnoticed")
	}
	if got := w.digests(); len(got) != 0 {
		t.Fatalf("a digest from a failed round: %v", keys(got))
	}
	w.send()
	w.send()
	if got := w.digests(); len(got["alice@example.test"]) != 1 {
		t.Fatalf("after the failure: %v", keys(got))
	}
}

// TestDamagedCursorStopsOnlyThatMembersDigest: a digest member whose cursor cannot be read
// gets no digest (not the whole archive), the round says why in the log, and the other members
// get theirs.
func TestDamagedCursorStopsOnlyThatMembersDigest(t *testing.T) {
	w := newWorld(t, at(0, "06:00"))
	for _, addr := range []string{"alice@example.test", "bob@example.test"} {
		if _, err := w.svc.AddMember(crew, addr, "daily", false); err != nil {
			t.Fatal(err)
		}
	}
	w.post("Ann <ann@example.test>", "Seeds", "")
	var logged bytes.Buffer
	w.sched.log = slog.New(slog.NewTextHandler(&logged, nil))
	if err := w.st.Faults().DamageCursor(crew, "alice@example.test"); err != nil {
		t.Fatal(err)
	}
	w.now = at(0, "08:00")
	w.send()
	got := w.digests()
	if len(got["alice@example.test"]) != 0 {
		t.Errorf("alice, whose cursor is damaged, got %d digests", len(got["alice@example.test"]))
	}
	if len(got["bob@example.test"]) != 1 || !strings.Contains(got["bob@example.test"][0], "Seeds") {
		t.Errorf("bob's digests: %q", got["bob@example.test"])
	}
	if !strings.Contains(logged.String(), "alice@example.test") || !strings.Contains(logged.String(), "cursor") {
		t.Errorf("no log line about alice's cursor: %s", logged.String())
	}
}

func keys(m map[string][]string) map[string]int {
	out := map[string]int{}
	for k, v := range m {
		out[k] = len(v)
	}
	return out
}

// TestDigestRoundOverManyLists: a round over more lists than it reads between giving back the
// database's mapped pages sends every list's digest, once.
func TestDigestRoundOverManyLists(t *testing.T) {
	w := newWorld(t, at(0, "09:00"))
	w.sched.Chores = chore.NewMappedPages(w.st, slog.New(slog.DiscardHandler))
	n := 2*chore.ReleaseEvery + 3
	err := w.st.Update(func(tx store.Tx) error {
		for i := range n {
			addr := fmt.Sprintf("crew%d@lists.example.test", i)
			if err := tx.CreateList(store.List{Address: addr, Name: fmt.Sprintf("Crew %d", i), Join: "approve", Post: "anyone"}); err != nil {
				return err
			}
			if _, err := tx.AddMember(addr, store.Member{Address: fmt.Sprintf("m%d@example.test", i), Mode: "daily", Added: w.now}); err != nil {
				return err
			}
			raw := fmt.Appendf(nil, "From: m%d@example.test\r\nSubject: News of crew %d\r\nMessage-ID: <n%d@example.test>\r\n\r\nHello.\r\n", i, i, i)
			if _, err := tx.AppendPost(addr, store.Post{Received: w.now, MessageID: fmt.Sprintf("n%d@example.test", i), From: fmt.Sprintf("m%d@example.test", i), Subject: fmt.Sprintf("News of crew %d", i)}, raw); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	w.now = at(1, "08:00")
	if sent := w.send(); sent.Lists != n || sent.Members != n || sent.Messages != n {
		t.Fatalf("round sent %+v, want %d lists, members and messages", sent, n)
	}
	got := w.digests()
	for i := range n {
		d := got[fmt.Sprintf("m%d@example.test", i)]
		if len(d) != 1 || !strings.Contains(d[0], fmt.Sprintf("1. News of crew %d  [new]\r\n", i)) {
			t.Fatalf("member of crew %d got %q", i, d)
		}
	}
	if sent := w.send(); sent.Members != 0 {
		t.Errorf("a second round sent %+v", sent)
	}
}

// TestDigestListIDIsThePostsListID: a list named "Gärten, Crew" (a comma, which RFC 5322
// allows in a phrase only quoted, and a letter outside ASCII, which RFC 2047 encodes) gives its
// digests the very List-Id its posts carry (RFC 2919 §3), not the name written raw.
func TestDigestListIDIsThePostsListID(t *testing.T) {
	w := newWorld(t, at(0, "09:00"))
	if _, err := w.svc.UpdateList(crew, lists.ListOptions{Name: "Gärten, Crew"}); err != nil {
		t.Fatal(err)
	}
	for _, m := range []struct{ addr, mode string }{{"bob@example.test", "each"}, {"dana@example.test", "daily"}} {
		if _, err := w.svc.AddMember(crew, m.addr, m.mode, false); err != nil {
			t.Fatal(err)
		}
	}
	w.post("alice@example.test", "Seeds", "")
	var post, digest []string
	err := w.st.View(func(tx store.Tx) error {
		return tx.Outbox(func(d store.Delivery) error {
			if d.Seq == 0 {
				return nil
			}
			msg, err := w.svc.Compose(d)
			if err != nil {
				return err
			}
			post = listIDs(t, msg)
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	w.now = at(1, "08:00")
	if sent := w.send(); sent.Digests != 1 {
		t.Fatalf("sent %+v, want one digest", sent)
	}
	err = w.st.View(func(tx store.Tx) error {
		return tx.Outbox(func(d store.Delivery) error {
			if d.Blob == 0 {
				return nil
			}
			msg, err := w.svc.Compose(d)
			if err != nil {
				return err
			}
			digest = listIDs(t, msg)
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	const want = "=?utf-8?q?G=C3=A4rten,_Crew?= <crew.lists.example.test>"
	if len(post) != 1 || post[0] != want {
		t.Errorf("the post copy's List-Id is %q, want %q", post, want)
	}
	if len(digest) != 1 || digest[0] != want {
		t.Errorf("the digest's List-Id is %q, want %q as the posts carry", digest, want)
	}
}

// listIDs are the raw List-Id fields of msg.
func listIDs(t *testing.T, msg []byte) []string {
	t.Helper()
	r, err := mail.CreateReader(bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	fields := r.Header.FieldsByKey("List-Id")
	for fields.Next() {
		v, err := fields.Raw()
		if err != nil {
			t.Fatal(err)
		}
		_, val, _ := strings.Cut(string(v), ":")
		out = append(out, strings.TrimSpace(val))
	}
	return out
}
