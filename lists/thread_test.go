package lists

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"crewmail/internal/mailtest"
)

// threadsOf posts msgs to a list anyone may post to, in order, and returns each post's thread by
// Message-ID.
func threadsOf(t *testing.T, s *Service, msgs ...[]byte) map[string]uint64 {
	t.Helper()
	if _, err := s.CreateList("crew@lists.example.test", ListOptions{Post: "anyone"}); err != nil && !strings.Contains(err.Error(), "already exists") {
		t.Fatal(err)
	}
	tgt, err := s.Route("crew@lists.example.test")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if _, err := s.Accept(Envelope{From: "a@example.test", Targets: []Target{tgt}}, m); err != nil {
			t.Fatalf("post: %v\n%s", err, m)
		}
	}
	out := map[string]uint64{}
	posts, err := s.Archive("crew@lists.example.test")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range posts {
		out[p.MessageID] = p.Thread
	}
	return out
}

func msgWith(id, subject, date string, header ...string) []byte {
	return fmt.Appendf(nil, "From: a@example.test\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <%s>\r\n%s\r\nbody\r\n", subject, date, id, strings.Join(header, ""))
}

const day1 = "Wed, 25 Nov 2026 09:00:00 +0000"

func TestThreadsFollowReferences(t *testing.T) {
	s := newTestService(t)
	th := threadsOf(t, s,
		msgWith("root@x", "Seeds", day1),
		msgWith("a@x", "Re: Seeds", day1, "In-Reply-To: <root@x>\r\n"),
		// References only, parent first, and a git send-email "<yes>" that is no id.
		msgWith("b@x", "Re: Seeds", day1, "References: <root@x> <a@x>\r\nIn-Reply-To: <yes>\r\n"),
		msgWith("other@x", "Tomatoes", day1),
		// A bogus "<yes>" must not join everything that carries one.
		msgWith("c@x", "Compost", day1, "In-Reply-To: <yes>\r\n"),
	)
	if th["a@x"] != th["root@x"] || th["b@x"] != th["root@x"] {
		t.Errorf("replies not in their thread: %v", th)
	}
	if th["other@x"] == th["root@x"] || th["c@x"] == th["root@x"] || th["c@x"] == th["other@x"] {
		t.Errorf("unrelated posts share a thread: %v", th)
	}
}

// TestThreadsGhostsAndLateParents: replies to a message the list never saw share a thread
// through it; a parent arriving after its replies joins them; a post that connects two threads
// merges them into the older.
func TestThreadsGhostsAndLateParents(t *testing.T) {
	s := newTestService(t)
	th := threadsOf(t, s,
		msgWith("r1@x", "Re: Lost", day1, "In-Reply-To: <ghost@x>\r\n"),
		msgWith("r2@x", "Re: Lost", day1, "References: <ghost@x>\r\n"),
		msgWith("late-child@x", "Re: Late", day1, "In-Reply-To: <late@x>\r\n"),
		msgWith("late@x", "Late", day1),
		msgWith("island@x", "Re: Island", day1, "In-Reply-To: <far@x>\r\n"),
		msgWith("bridge@x", "Re: Lost", day1, "References: <ghost@x> <far@x>\r\n"),
	)
	if th["r1@x"] != th["r2@x"] {
		t.Errorf("replies to the same ghost in different threads: %v", th)
	}
	if th["late@x"] != th["late-child@x"] {
		t.Errorf("a late parent did not join its reply: %v", th)
	}
	if th["island@x"] != th["r1@x"] || th["bridge@x"] != th["r1@x"] || th["r1@x"] != 1 {
		t.Errorf("the bridging post did not merge the threads into the older: %v", th)
	}
}

// TestThreadsBySubjectOnlyForBareReplies: a "Re:" with no references at all joins the latest
// thread of its base subject within 30 days; nothing else is joined by subject.
func TestThreadsBySubjectOnlyForBareReplies(t *testing.T) {
	s := newTestService(t)
	th := threadsOf(t, s,
		msgWith("old@x", "Harvest", "Mon, 28 Sep 2026 09:00:00 +0000"),
		msgWith("new@x", "[crew] Harvest", day1),
		msgWith("bare@x", "Re: [crew] AW: harvest", day1),
		msgWith("same@x", "Harvest", day1),
		msgWith("stale@x", "Re: Pruning", day1),
	)
	if th["bare@x"] != th["new@x"] {
		t.Errorf("bare reply not joined to the latest thread of its subject: %v", th)
	}
	if th["same@x"] == th["new@x"] || th["old@x"] == th["new@x"] {
		t.Errorf("a post that is not a reply joined by subject: %v", th)
	}
	// A reply without references to a thread older than 30 days starts its own.
	s2 := newTestService(t)
	th2 := threadsOf(t, s2,
		msgWith("summer@x", "Summer", "Mon, 12 Oct 2026 09:00:00 +0000"),
		msgWith("re-summer@x", "Re: Summer", day1),
	)
	if th2["re-summer@x"] == th2["summer@x"] {
		t.Errorf("joined a thread older than 30 days by subject: %v", th2)
	}
}

// TestThreadsOfMalformedMail: reference loops, duplicate and missing ids, ghost roots.
func TestThreadsOfMalformedMail(t *testing.T) {
	files := mailtest.Corpus(t, "malformed")
	s := newTestService(t)
	if _, err := s.CreateList("crew@lists.example.test", ListOptions{Post: "anyone"}); err != nil {
		t.Fatal(err)
	}
	tgt, _ := s.Route("crew@lists.example.test")
	ids := map[string]string{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.Accept(Envelope{From: "a@example.test", Targets: []Target{tgt}}, raw)
		if _, refused := IsRefusal(err); err != nil && !refused {
			t.Fatalf("%s: %v", filepath.Base(f), err)
		}
		for _, p := range res.Posts {
			ids[filepath.Base(f)] = p.MessageID
		}
	}
	posts, err := s.Archive("crew@lists.example.test")
	if err != nil {
		t.Fatal(err)
	}
	thread := map[string]uint64{}
	for _, p := range posts {
		thread[p.MessageID] = p.Thread
	}
	same := func(a, b string) bool { return ids[a] != "" && thread[ids[a]] == thread[ids[b]] }
	for _, pair := range [][2]string{
		{"01-references-loop-a.eml", "02-references-loop-b.eml"},
		{"11-ghost-root-real-root.eml", "12-ghost-root-child.eml"},
		{"14-parent-priority-root.eml", "16-parent-priority-grand-child.eml"},
	} {
		if !same(pair[0], pair[1]) {
			t.Errorf("%s and %s are not in one thread (%q %d, %q %d)", pair[0], pair[1], ids[pair[0]], thread[ids[pair[0]]], ids[pair[1]], thread[ids[pair[1]]])
		}
	}
	if ids["04-duplicate-msgid-1b.eml"] != "" {
		t.Errorf("a duplicate Message-ID was archived twice")
	}
}

// TestThreadsOfCorpus posts every message of the corpus's threads/ in Date order and checks
// that the threads are exactly those of threads/expected-threads.txt.
func TestThreadsOfCorpus(t *testing.T) {
	files := mailtest.Corpus(t, "threads")
	s := newTestService(t)
	if _, err := s.CreateList("crew@lists.example.test", ListOptions{Post: "anyone"}); err != nil {
		t.Fatal(err)
	}
	tgt, _ := s.Route("crew@lists.example.test")
	type msg struct {
		file string
		raw  []byte
		date time.Time
	}
	var msgs []msg
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		m := msg{file: filepath.Base(f), raw: raw}
		if in, err := parseMessage(raw); err == nil {
			m.date = in.date
		}
		msgs = append(msgs, m)
	}
	slices.SortStableFunc(msgs, func(a, b msg) int { return a.date.Compare(b.date) })
	for _, m := range msgs {
		if _, err := s.Accept(Envelope{From: "a@example.test", Targets: []Target{tgt}}, m.raw); err != nil {
			if _, refused := IsRefusal(err); !refused {
				t.Fatalf("%s: %v", m.file, err)
			}
			t.Logf("%s refused: %v", m.file, err)
		}
	}
	thread := map[string]uint64{}
	posts, err := s.Archive("crew@lists.example.test")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range posts {
		thread["<"+p.MessageID+">"] = p.Thread
	}
	f, err := os.Open(filepath.Join(filepath.Dir(files[0]), "expected-threads.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seen := map[uint64]string{} // our thread → the expected block that has it
	block, checked := "", 0
	var blockThread uint64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "## thread ") {
			block, blockThread = line, 0
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Split(line, "\t")
		th, ok := thread[fields[0]]
		if !ok {
			t.Errorf("%s (%s) is not in the archive", fields[0], fields[1])
			continue
		}
		checked++
		if blockThread == 0 {
			blockThread = th
			if other, dup := seen[th]; dup {
				t.Errorf("%s: its thread %d already holds %s", block, th, other)
			}
			seen[th] = block
		} else if th != blockThread {
			t.Errorf("%s: %s (%s) is in thread %d, the block's first message in %d", block, fields[0], fields[1], th, blockThread)
		}
	}
	if checked < 240 {
		t.Errorf("only %d messages checked", checked)
	}
	t.Logf("%d messages in %d threads as expected", checked, len(seen))
}
