package digest

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"

	"crewmail/internal/mailtest"
	"crewmail/internal/rawmsg"
	"crewmail/store"
)

// postsDigest is the digest of the hand-written posts in testdata/posts (HTML-only with links
// and a table, hard-wrapped, flowed, a signature and phone lines, a quote, a Cyrillic subject).
func postsDigest(t *testing.T, files []string, read map[uint64]bool) Digest {
	t.Helper()
	l := store.List{Address: "crew@lists.example.org", Name: "Garden crew"}
	var posts []post
	for i, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		raw = mailtest.SMTPForm(raw)
		h, err := rawmsg.ReadHeader(raw)
		if err != nil {
			t.Fatal(err)
		}
		subject, _ := (&mail.Header{Header: message.Header{Header: h}}).Subject()
		seq := uint64(i + 1)
		thread := seq
		if strings.Contains(h.Get("In-Reply-To"), "rota-1") {
			thread = 2
		}
		from := h.Get("From")
		if _, addr, ok := strings.Cut(from, "<"); ok {
			from = strings.TrimSuffix(addr, ">")
		}
		when := time.Date(2026, 11, 24, 18, i, 0, 0, time.UTC)
		posts = append(posts, readPost(l.Address, store.Post{Seq: seq, Thread: thread, From: from, Subject: subject, Date: when, Received: when}, raw, fuzzLinks{}, time.UTC))
	}
	return build(l, "daily", posts, 0, fuzzLinks{}, time.UTC, time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC), read)
}

// TestPostsGolden renders the hand-written posts and compares the text and HTML parts with
// golden files (-update rewrites them), and checks what a reader would check.
func TestPostsGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/posts/*.eml")
	slices.Sort(files)
	d := postsDigest(t, files, nil)
	r := newRenderer(t)
	text, err := r.Text(d)
	if err != nil {
		t.Fatal(err)
	}
	page, err := r.HTML(d)
	if err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string]string{"posts.text.golden": text, "posts.html.golden": page} {
		golden := filepath.Join("testdata", name)
		if *update {
			if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatal(err)
		}
		if got != string(want) {
			t.Errorf("%s differs (run with -update to accept)", golden)
		}
	}
	plain := unflow(text)
	for _, want := range []string{
		"See the frost forecast [1] before you plant,",
		"[1] https://example.org/frost?id=7",
		"Bed    What    When\nNorth  Garlic  Sat 28 Nov\nSouth  Tulips  Sun 29 Nov",
		"Write to marta@example.org with questions.",
		// the hard-wrapped paragraph is one line, which the reader's program wraps
		"turn the compost over the winter, and I would like us to take turns so that nobody",
		"- Ann: first week of December\n- Jürgen: second week",
		"The frost is white,\nthe heap is warm,\nthe worms do not mind.",
		"Fine by me. I can also take the week after if someone is away, just say so on the list and I will swap.\nAnn",
		"Да, у меня тоже. Reply below the quote.\n\nИван\n…\n",
		"Reply: crew+r-x@lists.example.test\n",
	} {
		if !strings.Contains(plain, want) {
			t.Errorf("the text part lacks %q", want)
		}
	}
	for _, want := range []string{
		`<a href="https://example.org/frost?id=7" rel="nofollow noreferrer" style="color:#1a5a8a; overflow-wrap:anywhere;">frost forecast</a> <small`,
		`(example.org/frost?id=7)`,
		`<a href="https://shop.example.net/bulbs" rel="nofollow noreferrer"`,
		`<td style=`, `>Garlic</td>`, `>When</th>`,
		"Hello all, I have been thinking about how we turn the compost over the winter, and",
		"the worms do not mind.",
		`Томаты и мороз`,
		`<pre style=`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the HTML part lacks %q", want)
		}
	}
	for _, bad := range []string{"utm_", "javascript:", "<script", "alert(", "onload", "steal", "position:fixed", "tracker.example.com",
		"<img", "<form", "<input", "evil.example", "color:red", "Sent from my iPhone", "Outlook for Android", "Tom Hardy, allotment 14",
		"some quoted text", "Did your tomatoes"} {
		if strings.Contains(page, bad) || strings.Contains(text, bad) {
			t.Errorf("the digest has %q", bad)
		}
	}
	// Only the post with a quote left out has the "…"; not the signature's nor the phone's.
	if n := strings.Count(plain, "\n…\n"); n != 1 {
		t.Errorf("%d quiet marks in the text part, want 1", n)
	}
	for _, th := range d.Threads {
		if strings.HasPrefix(th.Subject, "Re:") || strings.Contains(th.Subject, "[Garden crew]") {
			t.Errorf("conversation titled %q", th.Subject)
		}
	}
}

// TestReadPostsCollapsed: a post its reader has read over IMAP is one line; with ShowRead it
// is shown in full (the scheduler reads no flags for her).
func TestReadPostsCollapsed(t *testing.T) {
	files, _ := filepath.Glob("testdata/posts/*.eml")
	slices.Sort(files)
	r := newRenderer(t)
	d := postsDigest(t, files, map[uint64]bool{2: true})
	text, err := r.Text(d)
	if err != nil {
		t.Fatal(err)
	}
	page, err := r.HTML(d)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text, "Already read: Tom Hardy, Tue 24 Nov 18:01") || !strings.Contains(page, "Already read: Tom Hardy, <span") {
		t.Error("the read post is not one line")
	}
	if strings.Contains(text, "compost over the") || strings.Contains(page, "compost over the") {
		t.Error("the read post's text is shown")
	}
	if !strings.Contains(text, "Fine by me.") {
		t.Error("an unread post is missing")
	}
}

// TestTextLinesFitOverCorpus: the text part of a digest of every message in the corpus has no
// line longer than 78 characters (RFC 3676 §4.2; RFC 5322 §2.1.1).
func TestTextLinesFitOverCorpus(t *testing.T) {
	r := newRenderer(t)
	l := store.List{Address: "crew@lists.example.org", Name: "Garden crew"}
	for _, dir := range []string{"threads", "mime", "malformed"} {
		var posts []post
		for i, f := range mailtest.Corpus(t, dir) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			h, _ := rawmsg.ReadHeader(raw)
			subject, _ := (&mail.Header{Header: message.Header{Header: h}}).Subject()
			when := time.Date(2026, 11, 24, 0, 0, i, 0, time.UTC)
			posts = append(posts, readPost(l.Address, store.Post{Seq: uint64(i + 1), Thread: uint64(i + 1), From: "a@example.org", Subject: subject, Date: when, Received: when}, raw, fuzzLinks{}, time.UTC))
		}
		d := build(l, "daily", posts, 0, fuzzLinks{}, time.UTC, time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC), nil)
		msgs, err := r.Build(d, addresses)
		if err != nil {
			t.Fatal(err)
		}
		lines := 0
		for _, m := range msgs {
			_, parts := parse(t, m) // checks every line of the text part on the wire
			lines += strings.Count(parts[0].body, "\n")
		}
		t.Logf("%s: %d messages, %d parts, %d lines of text", dir, len(posts), len(msgs), lines)
		_ = utf8.RuneLen
	}
}

// TestSeenOverIMAPCollapsedInRound: in a real round, Ann's digest shows the post she marked
// \Seen over IMAP as one line and Bob's (who read nothing) shows it whole; once Ann turns it off
// (ShowRead), her next digest shows a read post whole.
func TestSeenOverIMAPCollapsedInRound(t *testing.T) {
	w := newWorld(t, at(0, "09:00"))
	for _, addr := range []string{"ann@example.test", "bob@example.test"} {
		if _, err := w.svc.AddMember(crew, addr, "daily", false); err != nil {
			t.Fatal(err)
		}
	}
	first := w.post("Tom <tom@example.test>", "Frost", "")
	w.post("Uma <uma@example.test>", "Re: Frost", first)
	markSeen := func(addr string, seq uint64) {
		t.Helper()
		if err := w.st.Update(func(tx store.Tx) error {
			m, err := tx.Member(crew, addr)
			if err != nil {
				return err
			}
			return tx.SetFlags(crew, m.ID, seq, store.FlagSeen)
		}); err != nil {
			t.Fatal(err)
		}
	}
	markSeen("ann@example.test", 1)
	w.now = at(1, "08:00")
	if _, err := w.sched.SendDue("", false); err != nil {
		t.Fatal(err)
	}
	got := w.digests()
	ann, bob := strings.Join(got["ann@example.test"], ""), strings.Join(got["bob@example.test"], "")
	if !strings.Contains(ann, "Already read: Tom, ") || strings.Contains(ann, "Text 1 of Frost") || !strings.Contains(ann, "Text 2 of Re: Frost") {
		t.Errorf("Ann's digest does not show her read post as one line:\n%s", ann)
	}
	if strings.Contains(bob, "Already read") || !strings.Contains(bob, "Text 1 of Frost") {
		t.Errorf("Bob's digest:\n%s", bob)
	}

	if _, err := w.svc.SetShowRead(crew, "ann@example.test", true); err != nil {
		t.Fatal(err)
	}
	w.post("Tom <tom@example.test>", "Re: Frost", first)
	markSeen("ann@example.test", 3)
	w.now = at(2, "08:00")
	if _, err := w.sched.SendDue("", false); err != nil {
		t.Fatal(err)
	}
	ann = strings.Join(w.digests()["ann@example.test"], "")
	if strings.Contains(ann, "Already read") || !strings.Contains(ann, "Text 3 of Re: Frost") {
		t.Errorf("with ShowRead, Ann's digest:\n%s", ann)
	}
}
