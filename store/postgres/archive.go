package postgres

import (
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"crewmail/internal/vocab"
	"crewmail/store"
)

func receivesEachPost(m store.Member) bool {
	return vocab.ReceivesEachPost(m.Mode, !m.Paused.IsZero() || !m.AwayUntil.IsZero())
}

func digestStart(m store.Member, newest uint64) (uint64, bool) {
	return vocab.DigestStart(m.Mode, newest)
}

// postChunk is how many posts a walk over the archive reads at a time: the callback runs
// between chunks (it may use the transaction), and memory stays bounded.
const postChunk = 256

func (t *tx) MessageID(list, id string) (seq uint64, ok bool, err error) {
	if err := t.list(list); err != nil {
		return 0, false, err
	}
	var s int64
	found, err := t.row("SELECT seq FROM posts WHERE list = $1 AND message_id = $2", args(list, id), &s)
	return uint64(s), found, err
}

// AppendPost archives raw under the list's next sequence, taken from the list's counter row in
// this transaction: a concurrent post waits for the row, so sequences are handed out in the
// order they are committed, with no gap (a SEQUENCE would let a later number commit first, and
// an IMAP client that saw it would never look back for the earlier one).
func (t *tx) AppendPost(list string, p store.Post, raw []byte) (store.Post, error) {
	if _, dup, err := t.MessageID(list, p.MessageID); err != nil {
		return p, err
	} else if dup {
		return p, fmt.Errorf("message %s in %s: %w", p.MessageID, list, store.ErrExists)
	}
	var seq int64
	if _, err := t.row("UPDATE lists SET seq = seq + 1 WHERE address = $1 RETURNING seq", args(list), &seq); err != nil {
		return p, err
	}
	p.Seq, p.Size = uint64(seq), len(raw)
	if p.Thread == 0 {
		p.Thread = p.Seq
	}
	meta, err := json.Marshal(p)
	if err != nil {
		return p, err
	}
	if _, err := t.exec("INSERT INTO posts (list, seq, message_id, meta, raw) VALUES ($1, $2, $3, $4, $5)", list, seq, p.MessageID, meta, raw); err != nil {
		return p, err
	}
	t.change(store.Change{Kind: store.ChangePost, List: list})
	merges, err := t.merges(list)
	if err != nil {
		return p, err
	}
	p.Origin, p.Thread = p.Thread, merges.thread(p.Thread)
	return p, nil
}

// decodePost reads a post record, with the thread its post is in now.
func decodePost(list string, seq int64, meta []byte, merges merges) (store.Post, error) {
	var p store.Post
	if err := json.Unmarshal(meta, &p); err != nil {
		return p, fmt.Errorf("damaged post %d of %s: %w", seq, list, err)
	}
	p.Origin, p.Thread = p.Thread, merges.thread(p.Thread)
	return p, nil
}

func (t *tx) Post(list string, seq uint64) (p store.Post, raw []byte, err error) {
	if err := t.list(list); err != nil {
		return p, nil, err
	}
	var meta []byte
	found, err := t.row("SELECT meta, raw FROM posts WHERE list = $1 AND seq = $2", args(list, int64(seq)), &meta, &raw)
	if err != nil {
		return p, nil, err
	}
	if !found {
		return p, nil, fmt.Errorf("post %d of %s: %w", seq, list, store.ErrNotFound)
	}
	merges, err := t.merges(list)
	if err != nil {
		return p, nil, err
	}
	p, err = decodePost(list, int64(seq), meta, merges)
	return p, raw, err
}

func (t *tx) PostMeta(list string, seq uint64) (store.Post, error) {
	if err := t.list(list); err != nil {
		return store.Post{}, err
	}
	var meta []byte
	found, err := t.row("SELECT meta FROM posts WHERE list = $1 AND seq = $2", args(list, int64(seq)), &meta)
	if err != nil {
		return store.Post{}, err
	}
	if !found {
		return store.Post{}, fmt.Errorf("post %d of %s: %w", seq, list, store.ErrNotFound)
	}
	merges, err := t.merges(list)
	if err != nil {
		return store.Post{}, err
	}
	return decodePost(list, int64(seq), meta, merges)
}

// walkPosts calls fn for the posts of list after seq, in order, postChunk at a time; with
// their bytes when withRaw.
func (t *tx) walkPosts(list string, seq uint64, withRaw bool, fn func(p store.Post, raw []byte) error) error {
	if err := t.list(list); err != nil {
		return err
	}
	merges, err := t.merges(list)
	if err != nil {
		return err
	}
	q := "SELECT seq, meta, NULL::bytea FROM posts WHERE list = $1 AND seq > $2 ORDER BY seq LIMIT $3"
	if withRaw {
		q = "SELECT seq, meta, raw FROM posts WHERE list = $1 AND seq > $2 ORDER BY seq LIMIT $3"
	}
	after := int64(seq)
	for {
		type row struct {
			seq       int64
			meta, raw []byte
		}
		var chunk []row
		err := t.rows(q, args(list, after, postChunk), func(r pgx.Rows) error {
			var x row
			err := r.Scan(&x.seq, &x.meta, &x.raw)
			chunk = append(chunk, x)
			return err
		})
		if err != nil {
			return err
		}
		for _, x := range chunk {
			p, err := decodePost(list, x.seq, x.meta, merges)
			if err != nil {
				return err
			}
			if err := fn(p, x.raw); err != nil {
				return err
			}
			after = x.seq
		}
		if len(chunk) < postChunk {
			return nil
		}
	}
}

func (t *tx) Posts(list string, fn func(store.Post) error) error {
	return t.walkPosts(list, 0, false, func(p store.Post, _ []byte) error { return fn(p) })
}

func (t *tx) PostsAfter(list string, seq uint64, fn func(p store.Post, raw []byte) error) error {
	return t.walkPosts(list, seq, true, fn)
}

func (t *tx) LastSeq(list string) (uint64, error) {
	var seq int64
	found, err := t.row("SELECT seq FROM lists WHERE address = $1", args(list), &seq)
	if err != nil {
		return 0, err
	}
	if !found {
		return 0, fmt.Errorf("list %s: %w", list, store.ErrNotFound)
	}
	return uint64(seq), nil
}

// Bounces.

func (t *tx) AddBounce(list string, b store.Bounce) error {
	if len(b.Head) > store.MaxBounceHead {
		b.Head = b.Head[:store.MaxBounceHead]
	}
	var id int64
	found, err := t.row("UPDATE lists SET bounce_seq = bounce_seq + 1 WHERE address = $1 RETURNING bounce_seq", args(list), &id)
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("list %s: %w", list, store.ErrNotFound)
	}
	data, err := json.Marshal(b)
	if err != nil {
		return err
	}
	if _, err := t.exec("INSERT INTO bounces VALUES ($1, $2, $3)", list, id, data); err != nil {
		return err
	}
	_, err = t.exec("DELETE FROM bounces WHERE list = $1 AND id + $2 <= $3", list, store.MaxBounces, id)
	return err
}

// records reads the (id, data) rows of a per-list table, in id order.
func (t *tx) records(table, list string) ([]int64, [][]byte, error) {
	if err := t.list(list); err != nil {
		return nil, nil, err
	}
	var ids []int64
	var datas [][]byte
	err := t.rows("SELECT id, data FROM "+table+" WHERE list = $1 ORDER BY id", args(list), func(r pgx.Rows) error {
		var id int64
		var data []byte
		err := r.Scan(&id, &data)
		ids, datas = append(ids, id), append(datas, data)
		return err
	})
	return ids, datas, err
}

func (t *tx) Bounces(list string, fn func(store.Bounce) error) error {
	ids, datas, err := t.records("bounces", list)
	if err != nil {
		return err
	}
	for i, data := range datas {
		var b store.Bounce
		if err := decode(fmt.Sprintf("bounce %d", ids[i]), data, &b); err != nil {
			return err
		}
		if err := fn(b); err != nil {
			return err
		}
	}
	return nil
}

// Holds.

func (t *tx) Hold(list string, h store.Held) (store.Held, error) {
	var id int64
	found, err := t.row("UPDATE lists SET held_seq = held_seq + 1 WHERE address = $1 RETURNING held_seq", args(list), &id)
	if err != nil {
		return h, err
	}
	if !found {
		return h, fmt.Errorf("list %s: %w", list, store.ErrNotFound)
	}
	h.ID = uint64(id)
	data, err := json.Marshal(h)
	if err != nil {
		return h, err
	}
	_, err = t.exec("INSERT INTO held VALUES ($1, $2, $3)", list, id, data)
	return h, err
}

func (t *tx) PutHeld(list string, h store.Held) error {
	if err := t.list(list); err != nil {
		return err
	}
	data, err := json.Marshal(h)
	if err != nil {
		return err
	}
	tag, err := t.exec("UPDATE held SET data = $3 WHERE list = $1 AND id = $2", list, int64(h.ID), data)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("held post %d of %s: %w", h.ID, list, store.ErrNotFound)
	}
	return nil
}

func (t *tx) HeldPost(list string, id uint64) (store.Held, error) {
	var h store.Held
	if err := t.list(list); err != nil {
		return h, err
	}
	var data []byte
	found, err := t.row("SELECT data FROM held WHERE list = $1 AND id = $2", args(list, int64(id)), &data)
	if err != nil {
		return h, err
	}
	if !found {
		return h, fmt.Errorf("held post %d of %s: %w", id, list, store.ErrNotFound)
	}
	return h, decode(fmt.Sprintf("held post %d", id), data, &h)
}

func (t *tx) Release(list string, id uint64) error {
	if err := t.list(list); err != nil {
		return err
	}
	_, err := t.exec("DELETE FROM held WHERE list = $1 AND id = $2", list, int64(id))
	return err
}

func (t *tx) HeldPosts(list string, fn func(store.Held) error) error {
	ids, datas, err := t.records("held", list)
	if err != nil {
		return err
	}
	for i, data := range datas {
		var h store.Held
		if err := decode(fmt.Sprintf("held post %d", ids[i]), data, &h); err != nil {
			return err
		}
		if err := fn(h); err != nil {
			return err
		}
	}
	return nil
}

// Pendings.

func (t *tx) pending(list, where string, a []any, what string) (store.Pending, error) {
	var p store.Pending
	if err := t.list(list); err != nil {
		return p, err
	}
	var data []byte
	found, err := t.row("SELECT data FROM pending WHERE list = $1 AND "+where, append(args(list), a...), &data)
	if err != nil {
		return p, err
	}
	if !found {
		return p, fmt.Errorf("%s on %s: %w", what, list, store.ErrNotFound)
	}
	return p, decode(what, data, &p)
}

func (t *tx) PendingFor(list, kind, addr string) (store.Pending, error) {
	return t.pending(list, "kind = $2 AND address = $3", args(kind, addr), kind+" for "+addr)
}

func (t *tx) PendingByID(list string, id uint64) (store.Pending, error) {
	return t.pending(list, "id = $2", args(int64(id)), fmt.Sprintf("pending action %d", id))
}

// PutPending stores p, under a new ID when it has none; one of the same kind about the same
// address is replaced.
func (t *tx) PutPending(list string, p store.Pending) (store.Pending, error) {
	if err := t.list(list); err != nil {
		return p, err
	}
	if p.ID == 0 {
		var id int64
		if _, err := t.row("UPDATE lists SET pending_seq = pending_seq + 1 WHERE address = $1 RETURNING pending_seq", args(list), &id); err != nil {
			return p, err
		}
		p.ID = uint64(id)
	}
	if _, err := t.exec("DELETE FROM pending WHERE list = $1 AND kind = $2 AND address = $3 AND id <> $4", list, p.Kind, p.Address, int64(p.ID)); err != nil {
		return p, err
	}
	data, err := json.Marshal(p)
	if err != nil {
		return p, err
	}
	_, err = t.exec(`INSERT INTO pending VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (list, id) DO UPDATE SET kind = excluded.kind, address = excluded.address, data = excluded.data`,
		list, int64(p.ID), p.Kind, p.Address, data)
	return p, err
}

func (t *tx) DeletePending(list string, id uint64) error {
	if err := t.list(list); err != nil {
		return err
	}
	_, err := t.exec("DELETE FROM pending WHERE list = $1 AND id = $2", list, int64(id))
	return err
}

func (t *tx) PendingActions(list string, fn func(store.Pending) error) error {
	ids, datas, err := t.records("pending", list)
	if err != nil {
		return err
	}
	for i, data := range datas {
		var p store.Pending
		if err := decode(fmt.Sprintf("pending action %d", ids[i]), data, &p); err != nil {
			return err
		}
		if err := fn(p); err != nil {
			return err
		}
	}
	return nil
}
