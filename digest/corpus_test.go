package digest

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
	"time"

	"crewmail/internal/mailtest"
	"crewmail/lists"
)

// tokenRE matches the signed part of a list's Reply, private reply and Mute addresses, which
// differs with each database's secret.
var tokenRE = regexp.MustCompile(`(crew(?:\+|&#43;)(?:r|p|mute)-)[a-z2-7]+`)

// TestCorpusDayGolden builds the daily digest of a real day of a mailing list (the corpus's
// notmuch messages of 17 November 2009, posted in Date order) and compares its text and HTML
// parts with golden files; -update rewrites them.
func TestCorpusDayGolden(t *testing.T) {
	corpusDay(t, "corpus-day", nil)
}

// TestCorpusMixedDayGolden is the same day with what that list lacked posted into it: the
// corpus's HTML-only posts (links, a table of layout, Big5), non-Latin subjects and texts, and
// the hand-written posts of testdata/posts (links and a data table, hard-wrapped and flowed
// text, a signature, phone lines, a quote).
func TestCorpusMixedDayGolden(t *testing.T) {
	more := mailtest.Corpus(t, "mime")
	var extra []string
	for _, f := range more {
		switch filepath.Base(f) {
		case "03-big5-html-only-slat-talk.eml", "20-utf8-bilingual.eml", "22-html-only-related-nexus.eml",
			"23-html-alternative-ecologeeks.eml", "28-html-alternative-users-ponymail.eml",
			"15-utf8-encoded-subject-fedora-fr.eml", "11-koi8r-encoded-words.eml":
			extra = append(extra, f)
		}
	}
	posts, _ := filepath.Glob("testdata/posts/*.eml")
	corpusDay(t, "corpus-mixed-day", append(extra, posts...))
}

// corpusDay posts the notmuch day, and then the extra files, into a list and compares its
// daily digest with the goldens testdata/NAME.text.golden and NAME.html.golden.
func corpusDay(t *testing.T, name string, extra []string) {
	files := mailtest.Corpus(t, "threads")
	type msg struct {
		raw  []byte
		date time.Time
	}
	var day []msg
	for _, f := range files {
		if m, _ := filepath.Match("notmuch-*.eml", filepath.Base(f)); !m {
			continue
		}
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		d := dateOf(raw)
		if d.UTC().Format("2006-01-02") == "2009-11-17" {
			day = append(day, msg{raw, d})
		}
	}
	slices.SortStableFunc(day, func(a, b msg) int { return a.date.Compare(b.date) })
	if len(day) < 15 {
		t.Fatalf("only %d messages of 17 November 2009 in the corpus", len(day))
	}
	for i, f := range extra {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		// Later the same evening, in the order given.
		day = append(day, msg{mailtest.SMTPForm(raw), time.Date(2009, 11, 17, 23, 30, i, 0, time.UTC)})
	}
	w := newWorld(t, time.Date(2009, 11, 17, 0, 0, 0, 0, time.UTC))
	if _, err := w.svc.AddMember(crew, "reader@example.test", "daily", false); err != nil {
		t.Fatal(err)
	}
	tgt, err := w.svc.Route(crew)
	if err != nil {
		t.Fatal(err)
	}
	accepted := 0
	for _, m := range day {
		w.now = m.date
		res, err := w.svc.Accept(lists.Envelope{From: "a@example.test", Targets: []lists.Target{tgt}}, m.raw)
		if err != nil {
			t.Logf("not posted: %v", err) // refused, as the server refuses it
			continue
		}
		accepted += len(res.Posts)
	}
	w.now = time.Date(2009, 11, 18, 8, 0, 0, 0, time.UTC)
	d, err := w.sched.Preview(crew, "daily", "reader@example.test")
	if err != nil {
		t.Fatal(err)
	}
	if d.Messages != accepted {
		t.Errorf("the digest has %d messages, %d were archived", d.Messages, accepted)
	}
	for _, part := range []struct {
		name   string
		render func(Digest) (string, error)
	}{{"text", w.sched.Text}, {"html", w.sched.HTML}} {
		got, err := part.render(d)
		if err != nil {
			t.Fatal(err)
		}
		got = tokenRE.ReplaceAllString(got, "${1}TOKEN")
		golden := filepath.Join("testdata", name+"."+part.name+".golden")
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
			t.Errorf("the %s part differs from %s (run with -update to accept)", part.name, golden)
		}
	}
}

// dateOf is a message's Date field, zero when it has none that parses.
func dateOf(raw []byte) time.Time {
	if m := dateRE.FindSubmatch(raw); m != nil {
		for _, layout := range []string{time.RFC1123Z, "Mon, 2 Jan 2006 15:04:05 -0700", "2 Jan 2006 15:04:05 -0700", time.RFC1123} {
			if d, err := time.Parse(layout, string(m[1])); err == nil {
				return d
			}
		}
	}
	return time.Time{}
}

var dateRE = regexp.MustCompile(`(?mi)^Date:\s*([^\r\n(]+?)\s*(?:\(.*\))?\r?$`)
