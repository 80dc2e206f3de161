package chore

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

type releaser struct {
	calls int
	err   error
}

func (r *releaser) ReleaseMapped() error {
	r.calls++
	return r.err
}

// round plays a round of digests over n lists to m, as digest.Scheduler.SendDue calls it.
func round(m *MappedPages, n int) {
	for i := range n {
		m.ListsHandedOut(i)
	}
	m.RoundOver(n)
}

// TestMappedPagesGivesBackEveryReleaseEveryListsAndAtTheEnd: a long round gives the pages back
// as it goes and once at its end; a round no longer than ReleaseEvery lists leaves them.
func TestMappedPagesGivesBackEveryReleaseEveryListsAndAtTheEnd(t *testing.T) {
	for _, c := range []struct {
		lists, releases int
	}{
		{0, 0},
		{1, 0},
		{ReleaseEvery, 0},
		{ReleaseEvery + 1, 2},
		{2*ReleaseEvery + 3, 3},
	} {
		r := &releaser{}
		round(NewMappedPages(r, slog.New(slog.DiscardHandler)), c.lists)
		if r.calls != c.releases {
			t.Errorf("a round over %d lists gave the pages back %d times, want %d", c.lists, r.calls, c.releases)
		}
	}
}

// TestMappedPagesLogsAFailure: pages that cannot be given back cost memory, not the round.
func TestMappedPagesLogsAFailure(t *testing.T) {
	var logged bytes.Buffer
	r := &releaser{err: errors.New("madvise: invalid argument")}
	round(NewMappedPages(r, slog.New(slog.NewTextHandler(&logged, nil))), ReleaseEvery+1)
	if !strings.Contains(logged.String(), "madvise: invalid argument") {
		t.Errorf("log: %s", logged.String())
	}
}
