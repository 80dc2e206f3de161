package digest

import (
	"fmt"
	"strings"
	"testing"

	"crewmail/lists"
	"crewmail/store"
)

// readDue reads in one transaction what is due on a list at w.now.
func (w *world) readDue(force bool) dueList {
	w.t.Helper()
	var d dueList
	err := w.st.View(func(tx store.Tx) error {
		var err error
		d, err = w.sched.readDue(tx, crew, w.now, force)
		return err
	})
	if err != nil {
		w.t.Fatal(err)
	}
	return d
}

func dueAddresses(d dueList) []string {
	var out []string
	for _, m := range d.dues {
		out = append(out, m.member.Address)
	}
	return out
}

// TestReadDueFindsOnlyTheDigestMembersWhoseDigestIsDue: a member who gets each post, and one
// whose weekly digest is not due, are not read; what is read is every post since the earliest
// cursor of those due.
func TestReadDueFindsOnlyTheDigestMembersWhoseDigestIsDue(t *testing.T) {
	w := newWorld(t, at(1, "06:00")) // a Tuesday: weekly digests go out on Mondays
	for addr, mode := range map[string]string{"alice@example.test": "daily", "bob@example.test": "weekly", "carol@example.test": "each"} {
		if _, err := w.svc.AddMember(crew, addr, mode, false); err != nil {
			t.Fatal(err)
		}
	}
	w.post("Ann <ann@example.test>", "Seeds", "")
	w.post("Ann <ann@example.test>", "Beans", "")
	w.now = at(1, "08:00")
	d := w.readDue(false)
	if got := dueAddresses(d); len(got) != 1 || got[0] != "alice@example.test" {
		t.Errorf("due: %v, want alice only", got)
	}
	if len(d.posts) != 2 || d.posts[0].Subject != "Seeds" || d.posts[1].Subject != "Beans" {
		t.Errorf("read %d posts: %+v", len(d.posts), d.posts)
	}
	if got := dueAddresses(w.readDue(true)); len(got) != 2 {
		t.Errorf("due when forced: %v, want alice and bob", got)
	}
}

// TestComposeGivesMembersWithTheSameCursorOneDigest: members who have had the same posts get
// one digest between them, composed once, with what is new for them.
func TestComposeGivesMembersWithTheSameCursorOneDigest(t *testing.T) {
	w := newWorld(t, at(0, "06:00"))
	for _, addr := range []string{"alice@example.test", "bob@example.test"} {
		if _, err := w.svc.AddMember(crew, addr, "daily", false); err != nil {
			t.Fatal(err)
		}
	}
	w.post("Ann <ann@example.test>", "Seeds", "")
	w.now = at(0, "08:00")
	digests, err := w.sched.compose(w.readDue(false), w.now)
	if err != nil {
		t.Fatal(err)
	}
	if len(digests) != 1 || len(digests[0].members) != 2 || digests[0].count != 1 {
		t.Fatalf("composed %d digests: %+v", len(digests), digests)
	}
	if len(digests[0].msgs) != 1 || !strings.Contains(textPart(t, digests[0].msgs[0]), "Seeds") {
		t.Errorf("the digest does not show the post: %q", digests[0].msgs)
	}
	if got := w.digests(); len(got) != 0 {
		t.Errorf("composing put digests in the outbox: %v", keys(got))
	}
}

// TestCommitLeavesOutAMemberARacingRoundHandled: a member whose cursor moved between reading
// and committing (a second round got there first) gets nothing from this one; the others get
// their digest.
func TestCommitLeavesOutAMemberARacingRoundHandled(t *testing.T) {
	w := newWorld(t, at(0, "06:00"))
	for _, addr := range []string{"alice@example.test", "bob@example.test"} {
		if _, err := w.svc.AddMember(crew, addr, "daily", false); err != nil {
			t.Fatal(err)
		}
	}
	w.post("Ann <ann@example.test>", "Seeds", "")
	w.now = at(0, "08:00")
	d := w.readDue(false)
	digests, err := w.sched.compose(d, w.now)
	if err != nil {
		t.Fatal(err)
	}
	var sent Sent
	err = w.st.Update(func(tx store.Tx) error {
		if err := tx.PutCursor(crew, "bob@example.test", store.Cursor{Seq: lastOf(d.posts), Run: w.now}); err != nil {
			return err
		}
		sent, err = w.sched.commit(tx, d, digests, w.now)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if sent.Digests != 1 || sent.Members != 1 || sent.Messages != 1 {
		t.Errorf("sent %+v, want one digest of one message to one member", sent)
	}
	got := w.digests()
	if len(got["alice@example.test"]) != 1 || len(got["bob@example.test"]) != 0 {
		t.Errorf("outbox: %v, want one digest for alice only", keys(got))
	}
	if sent := w.send(); sent.Members != 0 {
		t.Errorf("a later round sent %+v", sent)
	}
}

type chores struct {
	handedOut []int
	over      []int
}

func (c *chores) ListsHandedOut(n int) { c.handedOut = append(c.handedOut, n) }
func (c *chores) RoundOver(n int)      { c.over = append(c.over, n) }

// TestRoundTellsItsChoresHowFarItHasCome: before each list a round hands out, its chores hear
// how many have gone, and once it is over, how many it went through.
func TestRoundTellsItsChoresHowFarItHasCome(t *testing.T) {
	w := newWorld(t, at(0, "06:00"))
	for _, addr := range []string{"garden@lists.example.test", "seeds@lists.example.test"} {
		if _, err := w.svc.CreateList(addr, lists.ListOptions{Post: "anyone"}); err != nil {
			t.Fatal(err)
		}
	}
	c := &chores{}
	w.sched.Chores = c
	w.send()
	if fmt.Sprint(c.handedOut) != "[0 1 2]" || fmt.Sprint(c.over) != "[3]" {
		t.Errorf("handed out %v, over %v; want [0 1 2] and [3]", c.handedOut, c.over)
	}
}
