package postgres

import (
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"crewmail/store"
)

// Threads, as the bbolt backend keeps them (see store/threads.go): merges are recorded, never
// rewritten into the records of the threads they merge, and readers follow them.

// merge is where a merged thread went, and the merge's number.
type merge struct{ into, stamp uint64 }

// merges are a list's merges: thread → where it was merged.
type merges map[uint64]merge

// into says where thread th was merged and by which merge; ok false when it was not. Merges
// go into older threads only, so a record pointing elsewhere is not followed.
func (m merges) into(th uint64) (merge, bool) {
	g, ok := m[th]
	if !ok || g.into >= th {
		return merge{}, false
	}
	return g, true
}

// thread is where thread th is now.
func (m merges) thread(th uint64) uint64 {
	for {
		g, ok := m.into(th)
		if !ok {
			return th
		}
		th = g.into
	}
}

// merges reads the merges of list, once per transaction (kept in step with the merges it
// makes).
func (t *tx) merges(list string) (merges, error) {
	if m, ok := t.merged[list]; ok {
		return m, nil
	}
	m := merges{}
	err := t.rows("SELECT thread, into_thread, stamp FROM merged WHERE list = $1", args(list), func(r pgx.Rows) error {
		var th, into, stamp int64
		err := r.Scan(&th, &into, &stamp)
		m[uint64(th)] = merge{uint64(into), uint64(stamp)}
		return err
	})
	if err != nil {
		return nil, err
	}
	t.merged[list] = m
	return m, nil
}

// FindThread returns the thread a post that refers to ids joins (that of the first of ids
// seen before, 0 when none), merging the threads of the others into the oldest of them.
func (t *tx) FindThread(list string, ids []string) (uint64, error) {
	if err := t.list(list); err != nil {
		return 0, err
	}
	known := map[string]uint64{}
	if len(ids) > 0 {
		err := t.rows("SELECT message_id, thread FROM thread_ids WHERE list = $1 AND message_id = ANY($2)", args(list, ids), func(r pgx.Rows) error {
			var id string
			var th int64
			err := r.Scan(&id, &th)
			known[id] = uint64(th)
			return err
		})
		if err != nil {
			return 0, err
		}
	}
	merges, err := t.merges(list)
	if err != nil {
		return 0, err
	}
	var origin uint64
	var found []uint64
	for _, id := range ids {
		th, ok := known[id]
		if !ok {
			continue
		}
		if origin == 0 {
			origin = th
		}
		if now := merges.thread(th); !slices.Contains(found, now) {
			found = append(found, now)
		}
	}
	if len(found) > 1 {
		slices.Sort(found)
		for _, th := range found[1:] {
			var stamp int64
			if _, err := t.row("UPDATE lists SET merge_seq = merge_seq + 1 WHERE address = $1 RETURNING merge_seq", args(list), &stamp); err != nil {
				return 0, err
			}
			if _, err := t.exec(`INSERT INTO merged VALUES ($1, $2, $3, $4)
				ON CONFLICT (list, thread) DO UPDATE SET into_thread = excluded.into_thread, stamp = excluded.stamp`,
				list, int64(th), int64(found[0]), stamp); err != nil {
				return 0, fmt.Errorf("merge threads of %s: %w", list, err)
			}
			merges[th] = merge{found[0], uint64(stamp)}
		}
	}
	return origin, nil
}

func (t *tx) IndexThread(list string, thread uint64, ids []string, subject string, date time.Time) error {
	if err := t.list(list); err != nil {
		return err
	}
	if len(ids) > 0 {
		if _, err := t.exec("INSERT INTO thread_ids SELECT $1, id, $2 FROM unnest($3::text[]) AS id ON CONFLICT DO NOTHING", list, int64(thread), ids); err != nil {
			return err
		}
	}
	if subject == "" {
		return nil
	}
	_, err := t.exec(`INSERT INTO subjects VALUES ($1, $2, $3, $4)
		ON CONFLICT (list, subject) DO UPDATE SET thread = excluded.thread, date = excluded.date WHERE subjects.date <= excluded.date`,
		list, subject, int64(thread), date.Unix())
	return err
}

func (t *tx) SubjectThread(list, subject string, since time.Time) (th uint64, ok bool, err error) {
	if err := t.list(list); err != nil {
		return 0, false, err
	}
	if subject == "" {
		return 0, false, nil
	}
	var thread, date int64
	found, err := t.row("SELECT thread, date FROM subjects WHERE list = $1 AND subject = $2", args(list, subject), &thread, &date)
	if err != nil || !found || date < since.Unix() {
		return 0, false, err
	}
	return uint64(thread), true, nil
}

const (
	kindMutes   = "mutes"
	kindFollows = "follows"
)

func (t *tx) Mute(list string, th, member uint64) error { return t.mark(list, kindMutes, th, member) }
func (t *tx) Unmute(list string, th, member uint64) error {
	return t.unmark(list, kindMutes, th, member)
}
func (t *tx) Muted(list string, p store.Post) (map[uint64]bool, error) {
	return t.marked(list, kindMutes, p)
}
func (t *tx) Follow(list string, th, member uint64) error {
	return t.mark(list, kindFollows, th, member)
}
func (t *tx) Unfollow(list string, th, member uint64) error {
	return t.unmark(list, kindFollows, th, member)
}
func (t *tx) Followed(list string, p store.Post) (map[uint64]bool, error) {
	return t.marked(list, kindFollows, p)
}

// mark records that member muted (or follows) thread th, with the merge count of now.
func (t *tx) mark(list, kind string, th, member uint64) error {
	if err := t.list(list); err != nil {
		return err
	}
	_, err := t.exec(`INSERT INTO marks SELECT $1, $2, $3, $4, merge_seq FROM lists WHERE address = $1
		ON CONFLICT (list, kind, thread, member) DO UPDATE SET stamp = excluded.stamp`, list, kind, int64(th), int64(member))
	return err
}

// unmark removes the member's marks of th and of the threads th was merged into.
func (t *tx) unmark(list, kind string, th, member uint64) error {
	if err := t.list(list); err != nil {
		return err
	}
	merges, err := t.merges(list)
	if err != nil {
		return err
	}
	threads := []int64{int64(th)}
	for g, ok := merges.into(th); ok; g, ok = merges.into(g.into) {
		threads = append(threads, int64(g.into))
	}
	_, err = t.exec("DELETE FROM marks WHERE list = $1 AND kind = $2 AND member = $3 AND thread = ANY($4)", list, kind, int64(member), threads)
	return err
}

// marked returns the members with a mark on the conversation of post p: one on the thread p
// was archived in, or on a thread that had it merged in before the mark was made.
func (t *tx) marked(list, kind string, p store.Post) (map[uint64]bool, error) {
	if err := t.list(list); err != nil {
		return nil, err
	}
	merges, err := t.merges(list)
	if err != nil {
		return nil, err
	}
	th := p.Origin
	if th == 0 {
		th = p.Thread
	}
	// The way from p's thread, each step with the latest merge on the way to it.
	latest := map[int64]uint64{int64(th): 0}
	way := []int64{int64(th)}
	var l uint64
	for g, ok := merges.into(th); ok; g, ok = merges.into(g.into) {
		l = max(l, g.stamp)
		latest[int64(g.into)] = l
		way = append(way, int64(g.into))
	}
	var out map[uint64]bool
	err = t.rows("SELECT thread, member, stamp FROM marks WHERE list = $1 AND kind = $2 AND thread = ANY($3)", args(list, kind, way), func(r pgx.Rows) error {
		var thread, member, stamp int64
		if err := r.Scan(&thread, &member, &stamp); err != nil {
			return err
		}
		if latest[thread] <= uint64(stamp) {
			if out == nil {
				out = map[uint64]bool{}
			}
			out[uint64(member)] = true
		}
		return nil
	})
	return out, err
}
