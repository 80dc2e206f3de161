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
	w := newWorld(t, time.Date(2009, 11, 17, 0, 0, 0, 0, time.UTC))
	if _, err := w.svc.AddMember(crew, "reader@example.test", "daily", false); err != nil {
		t.Fatal(err)
	}
	tgt, err := w.svc.Route(crew)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range day {
		w.now = m.date
		if _, err := w.svc.Accept(lists.Envelope{From: "a@example.test", Targets: []lists.Target{tgt}}, m.raw); err != nil {
			t.Fatal(err)
		}
	}
	w.now = time.Date(2009, 11, 18, 8, 0, 0, 0, time.UTC)
	d, err := w.sched.Preview(crew, "daily", "reader@example.test")
	if err != nil {
		t.Fatal(err)
	}
	if d.Messages != len(day) {
		t.Errorf("the digest has %d messages, the day %d", d.Messages, len(day))
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
		golden := filepath.Join("testdata", "corpus-day."+part.name+".golden")
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
