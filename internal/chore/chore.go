// Package chore owns the server's housekeeping that keeps pace with its work but belongs to no
// flow of mail: giving back the database pages a long round of digests has read through the
// store's memory map.
package chore

import "log/slog"

// ReleaseEvery is how many lists a round of digests goes through between giving back the
// database pages it has read: a round over thousands of lists reads the whole archive, and the
// server's resident set should be what it holds, not the size of the file (bench/README.md,
// "Digests": a round over 10,000 lists peaks at 53 MiB instead of 538).
const ReleaseEvery = 256

// Releaser gives back the database pages this process has read through its memory map
// (store.Store.ReleaseMapped).
type Releaser interface {
	ReleaseMapped() error
}

// MappedPages gives back the database pages a round of digests reads, every ReleaseEvery lists
// and at the end of a round that long. It keeps pace with the round as digest.Chores and holds
// no state of its own, so one serves every round.
type MappedPages struct {
	st  Releaser
	log *slog.Logger
}

// NewMappedPages returns the chore for the database st.
func NewMappedPages(st Releaser, log *slog.Logger) *MappedPages {
	return &MappedPages{st: st, log: log}
}

// ListsHandedOut is called before a round hands out its next list, when n lists have gone.
func (m *MappedPages) ListsHandedOut(n int) {
	if n > 0 && n%ReleaseEvery == 0 {
		m.release()
	}
}

// RoundOver is called when a round over n lists is over: a short round has read little, and
// what it read the kernel takes back when it needs the memory.
func (m *MappedPages) RoundOver(n int) {
	if n > ReleaseEvery {
		m.release()
	}
}

func (m *MappedPages) release() {
	if err := m.st.ReleaseMapped(); err != nil {
		m.log.Warn("cannot give back mapped database pages", "err", err)
	}
}
