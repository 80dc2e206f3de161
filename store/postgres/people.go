package postgres

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"crewmail/store"
)

// What the server holds about one person across every list (store.People, issue 21), as the
// bbolt backend does it (store/people.go). A redaction has no journal here: a database
// restored from before one is PostgreSQL's own point-in-time recovery, which keeps it.

var _ store.People = (*tx)(nil)

// ChangeAddress moves every membership of old (with its member ID), its digest cursors, the
// authorship of its archived posts (re-indexed for search) and its app password to new; it
// returns the lists whose membership moved, in order. ErrExists, and nothing moved, when new
// is a member of a list old is on.
func (t *tx) ChangeAddress(old, new string) ([]string, error) {
	if old == new {
		return nil, nil
	}
	var clash string
	found, err := t.row(`SELECT n.list FROM members n JOIN members o ON o.list = n.list AND o.address = $1
		WHERE n.address = $2 ORDER BY n.list COLLATE "C" LIMIT 1`, args(old, new), &clash)
	if err != nil {
		return nil, err
	}
	if found {
		return nil, fmt.Errorf("%s on %s: %w", new, clash, store.ErrExists)
	}
	type membership struct {
		list string
		data []byte
	}
	var ms []membership
	if err := t.rows(`SELECT list, data FROM members WHERE address = $1 ORDER BY list COLLATE "C"`, args(old), func(r pgx.Rows) error {
		var m membership
		err := r.Scan(&m.list, &m.data)
		ms = append(ms, m)
		return err
	}); err != nil {
		return nil, err
	}
	var moved []string
	for _, x := range ms {
		var m store.Member
		if err := decode("member "+old+" of "+x.list, x.data, &m); err != nil {
			return nil, err
		}
		m.Address = new
		data, err := json.Marshal(m)
		if err != nil {
			return nil, err
		}
		if _, err := t.exec("UPDATE members SET address = $3, data = $4 WHERE list = $1 AND address = $2", x.list, old, new, data); err != nil {
			return nil, err
		}
		moved = append(moved, x.list)
	}
	if len(moved) > 0 {
		if _, err := t.exec("DELETE FROM cursors WHERE address = $1 AND list = ANY($2)", new, moved); err != nil {
			return nil, err
		}
		if _, err := t.exec("UPDATE cursors SET address = $2 WHERE address = $1 AND list = ANY($3)", old, new, moved); err != nil {
			return nil, err
		}
	}
	// Authorship moves on every list, a member's or not (she may have left one).
	type authored struct {
		list string
		seq  int64
		meta []byte
	}
	var posts []authored
	if err := t.rows(`SELECT list, seq, meta FROM posts WHERE convert_from(meta, 'UTF8')::jsonb ->> 'from' = $1 ORDER BY list, seq`, args(old), func(r pgx.Rows) error {
		var a authored
		err := r.Scan(&a.list, &a.seq, &a.meta)
		posts = append(posts, a)
		return err
	}); err != nil {
		return nil, err
	}
	for _, a := range posts {
		var p store.Post
		if err := json.Unmarshal(a.meta, &p); err != nil {
			return nil, fmt.Errorf("damaged post %d of %s: %w", a.seq, a.list, err)
		}
		p.From = new
		meta, err := json.Marshal(p)
		if err != nil {
			return nil, err
		}
		if _, err := t.exec("UPDATE posts SET meta = $3 WHERE list = $1 AND seq = $2", a.list, a.seq, meta); err != nil {
			return nil, err
		}
		// Search's from: finds her posts under the new address (For takes the sender as
		// recorded).
		p, raw, err := t.Post(a.list, uint64(a.seq))
		if err != nil {
			return nil, err
		}
		if err := t.IndexPost(a.list, p.Seq, store.NewSearchDoc(raw).For(p)); err != nil {
			return nil, err
		}
	}
	if _, err := t.exec(`DELETE FROM app_passwords WHERE address = $2 AND EXISTS (SELECT 1 FROM app_passwords WHERE address = $1)`, old, new); err != nil {
		return nil, err
	}
	if _, err := t.exec("UPDATE app_passwords SET address = $2 WHERE address = $1", old, new); err != nil {
		return nil, err
	}
	return moved, nil
}

// ForgetMember takes addr off list with everything kept under its member ID: read state, mutes
// and follows, the bounces kept that name it, its digest cursor and the actions pending about
// it. ErrNotFound when it is not a member.
func (t *tx) ForgetMember(list, addr string) error {
	m, err := t.Member(list, addr)
	if err != nil {
		return err
	}
	if err := t.RemoveMember(list, addr); err != nil {
		return err
	}
	for _, table := range []string{"flags", "marks"} {
		if _, err := t.exec("DELETE FROM "+table+" WHERE list = $1 AND member = $2", list, int64(m.ID)); err != nil {
			return err
		}
	}
	ids, datas, err := t.records("bounces", list)
	if err != nil {
		return err
	}
	var gone []int64
	for i, data := range datas {
		var b store.Bounce
		if json.Unmarshal(data, &b) == nil && b.Member == m.ID {
			gone = append(gone, ids[i])
		}
	}
	if len(gone) > 0 {
		if _, err := t.exec("DELETE FROM bounces WHERE list = $1 AND id = ANY($2)", list, gone); err != nil {
			return err
		}
	}
	_, err = t.exec("DELETE FROM pending WHERE list = $1 AND address = $2", list, addr)
	return err
}

// DeleteAppPassword removes addr's app password; none is not an error.
func (t *tx) DeleteAppPassword(addr string) error {
	_, err := t.exec("DELETE FROM app_passwords WHERE address = $1", addr)
	return err
}

// MarksOf returns the threads of list the member muted and those she follows, ascending.
func (t *tx) MarksOf(list string, member uint64) (muted, followed []uint64, err error) {
	if err := t.list(list); err != nil {
		return nil, nil, err
	}
	err = t.rows("SELECT kind, thread FROM marks WHERE list = $1 AND member = $2 ORDER BY thread", args(list, int64(member)), func(r pgx.Rows) error {
		var kind string
		var th int64
		if err := r.Scan(&kind, &th); err != nil {
			return err
		}
		switch kind {
		case kindMutes:
			muted = append(muted, uint64(th))
		case kindFollows:
			followed = append(followed, uint64(th))
		}
		return nil
	})
	return muted, followed, err
}

// RedactPost replaces archived post seq of list with p and raw, keeping its sequence,
// Message-ID and thread, re-indexes it for search and counts one more redaction on the list
// (List.Redactions, part of the IMAP UIDVALIDITY: RFC 9051 §2.3.1.1). A post redacted the same
// way already is left as it is.
func (t *tx) RedactPost(list string, seq uint64, p store.Post, raw []byte) error {
	if err := t.list(list); err != nil {
		return err
	}
	var meta, had []byte
	found, err := t.row("SELECT meta, raw FROM posts WHERE list = $1 AND seq = $2", args(list, int64(seq)), &meta, &had)
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("post %d of %s: %w", seq, list, store.ErrNotFound)
	}
	var was store.Post
	if err := json.Unmarshal(meta, &was); err != nil {
		return fmt.Errorf("damaged post %d of %s: %w", seq, list, err)
	}
	if was.Redacted == p.Redacted && bytes.Equal(had, raw) {
		return nil
	}
	p.Seq, p.MessageID, p.Thread, p.Size = seq, was.MessageID, was.Thread, len(raw)
	if meta, err = json.Marshal(p); err != nil {
		return err
	}
	if _, err := t.exec("UPDATE posts SET meta = $3, raw = $4 WHERE list = $1 AND seq = $2", list, int64(seq), meta, raw); err != nil {
		return err
	}
	merges, err := t.merges(list)
	if err != nil {
		return err
	}
	indexed := p
	indexed.Origin, indexed.Thread = was.Thread, merges.thread(was.Thread)
	if err := t.IndexPost(list, seq, store.NewSearchDoc(raw).For(indexed)); err != nil {
		return err
	}
	l, err := t.List(list)
	if err != nil {
		return err
	}
	l.Redactions++
	return t.PutList(l)
}
