package postgres

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"crewmail/store"
)

// The outbox is shared by every node: a node claims due rows with FOR UPDATE SKIP LOCKED (two
// nodes claiming at once take different rows, neither waits) and leases them in its own name.
// A node that dies leaves its leases to run out (a leased row's due time is the lease's end),
// and another node claims the rows then.

// outboxChunk is how many rows a walk over the outbox or the failures reads at a time.
const outboxChunk = 1000

func (t *tx) putDelivery(d store.Delivery, node *string) error {
	data, err := json.Marshal(d)
	if err != nil {
		return err
	}
	_, err = t.exec(`INSERT INTO outbox (id, due, lease_node, data) VALUES ($1, $2, $3, $4)
		ON CONFLICT (id) DO UPDATE SET due = excluded.due, lease_node = excluded.lease_node, data = excluded.data`,
		int64(d.ID), d.Due.UnixNano(), node, data)
	return err
}

// Enqueue adds d to the outbox, due at d.Due (or at once when zero); the other nodes' workers
// are woken at the commit.
// The row is written with the transaction's next statement or its commit, together with the
// others queued meanwhile (a post queues one per recipient).
func (t *tx) Enqueue(d store.Delivery) (store.Delivery, error) {
	if len(t.ids) == 0 {
		t.block = min(max(2*t.block, 8), 512)
		err := t.rows("SELECT nextval('outbox_ids') FROM generate_series(1, $1)", args(t.block), func(r pgx.Rows) error {
			var id int64
			err := r.Scan(&id)
			t.ids = append(t.ids, id)
			return err
		})
		if err != nil {
			return d, err
		}
	}
	d.ID, t.ids = uint64(t.ids[0]), t.ids[1:]
	if d.Due.IsZero() {
		d.Due = d.Created
	}
	data, err := json.Marshal(d)
	if err != nil {
		return d, err
	}
	t.later("INSERT INTO outbox (id, due, lease_node, data) VALUES ($1, $2, NULL, $3)", int64(d.ID), d.Due.UnixNano(), data)
	t.change(store.Change{Kind: store.ChangeOutbox})
	return d, nil
}

// ClaimDue leases up to max due rows to this node until now+lease, recording the attempt.
// Rows another node is claiming right now are skipped, not waited for.
func (t *tx) ClaimDue(now time.Time, lease time.Duration, max int) ([]store.Delivery, error) {
	var due []store.Delivery
	err := t.rows("SELECT id, data FROM outbox WHERE due <= $1 ORDER BY due, id LIMIT $2 FOR UPDATE SKIP LOCKED", args(now.UnixNano(), max), func(r pgx.Rows) error {
		var id int64
		var data []byte
		if err := r.Scan(&id, &data); err != nil {
			return err
		}
		var d store.Delivery
		if err := decode(fmt.Sprintf("outbox row %d", id), data, &d); err != nil {
			return err
		}
		due = append(due, d)
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i := range due {
		d := &due[i]
		d.Attempts++
		d.Leased = true
		d.Due = now.Add(lease)
		if err := t.putDelivery(*d, &t.db.node); err != nil {
			return nil, err
		}
	}
	return due, nil
}

// Delivered removes a leased delivery from the outbox.
func (t *tx) Delivered(d store.Delivery) error {
	if _, err := t.exec("DELETE FROM outbox WHERE id = $1", int64(d.ID)); err != nil {
		return err
	}
	return t.unrefBlob(d.Blob)
}

func (t *tx) Retry(d store.Delivery, next time.Time, reason string) error {
	d.Due, d.Leased, d.LastError = next, false, reason
	return t.putDelivery(d, nil)
}

func (t *tx) Fail(d store.Delivery, now time.Time, reason string) error {
	if err := t.Delivered(d); err != nil {
		return err
	}
	d.Leased = false
	d.Message = nil
	data, err := json.Marshal(store.Failure{Delivery: d, Failed: now, Error: reason})
	if err != nil {
		return err
	}
	_, err = t.exec("INSERT INTO failures VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET data = excluded.data", int64(d.ID), data)
	return err
}

// ReleaseLeases makes the deliveries leased by this node due at now. Other nodes' leases are
// theirs: a live node is still attempting them, a dead one's run out by themselves. A node is
// new at every start, so at start-up this releases none.
func (t *tx) ReleaseLeases(now time.Time) (int, error) {
	var leased []store.Delivery
	err := t.rows("SELECT id, data FROM outbox WHERE lease_node = $1 ORDER BY due, id", args(t.db.node), func(r pgx.Rows) error {
		var id int64
		var data []byte
		if err := r.Scan(&id, &data); err != nil {
			return err
		}
		var d store.Delivery
		if err := decode(fmt.Sprintf("outbox row %d", id), data, &d); err != nil {
			return err
		}
		leased = append(leased, d)
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, d := range leased {
		if err := t.Retry(d, now, d.LastError); err != nil {
			return 0, err
		}
	}
	return len(leased), nil
}

func (t *tx) NextDue() (time.Time, bool, error) {
	var due int64
	found, err := t.row("SELECT due FROM outbox ORDER BY due, id LIMIT 1", nil, &due)
	if err != nil || !found {
		return time.Time{}, false, err
	}
	return time.Unix(0, due), true, nil
}

// walkOutbox calls fn for every outbox row, earliest first, outboxChunk rows at a time.
func (t *tx) walkOutbox(fn func(store.Delivery) error) error {
	afterDue, afterID := int64(-1<<63), int64(0)
	return inChunks(outboxChunk, fn, func(r pgx.Rows) (d store.Delivery, err error) {
		var data []byte
		if err := r.Scan(&afterDue, &afterID, &data); err != nil {
			return d, err
		}
		return d, decode(fmt.Sprintf("outbox row %d", afterID), data, &d)
	}, func() (string, []any) {
		return "SELECT due, id, data FROM outbox WHERE (due, id) > ($1, $2) ORDER BY due, id LIMIT $3", args(afterDue, afterID, outboxChunk)
	}, t)
}

func (t *tx) Outbox(fn func(store.Delivery) error) error { return t.walkOutbox(fn) }

func (t *tx) Failures(fn func(store.Failure) error) error {
	after := int64(0)
	return inChunks(outboxChunk, fn, func(r pgx.Rows) (f store.Failure, err error) {
		var data []byte
		if err := r.Scan(&after, &data); err != nil {
			return f, err
		}
		return f, decode(fmt.Sprintf("failure row %d", after), data, &f)
	}, func() (string, []any) {
		return "SELECT id, data FROM failures WHERE id > $1 ORDER BY id LIMIT $2", args(after, outboxChunk)
	}, t)
}

// inChunks calls fn for every row of a keyset-paginated query, size rows per statement: next
// gives the statement after the last row read (scan moves the key on as it reads), and each
// chunk is read whole before fn sees its rows, so fn may run statements of its own.
func inChunks[T any](size int, fn func(T) error, scan func(pgx.Rows) (T, error), next func() (string, []any), t *tx) error {
	for {
		var chunk []T
		q, a := next()
		err := t.rows(q, a, func(r pgx.Rows) error {
			v, err := scan(r)
			if err != nil {
				return err
			}
			chunk = append(chunk, v)
			return nil
		})
		if err != nil {
			return err
		}
		for _, v := range chunk {
			if err := fn(v); err != nil {
				return err
			}
		}
		if len(chunk) < size {
			return nil
		}
	}
}

func (t *tx) OutboxSize() (int, error) {
	var n int64
	_, err := t.row("SELECT count(*) FROM outbox", nil, &n)
	return int(n), err
}

func (t *tx) findDelivery(id uint64) (store.Delivery, error) {
	var d store.Delivery
	var data []byte
	found, err := t.row("SELECT data FROM outbox WHERE id = $1", args(int64(id)), &data)
	if err != nil {
		return d, err
	}
	if !found {
		return d, fmt.Errorf("delivery %d: %w", id, store.ErrNotFound)
	}
	return d, decode(fmt.Sprintf("outbox row %d", id), data, &d)
}

func (t *tx) Reschedule(id uint64, due time.Time) (store.Delivery, error) {
	d, err := t.findDelivery(id)
	if err != nil {
		return store.Delivery{}, err
	}
	if d.Leased {
		return d, fmt.Errorf("delivery %d: %w", id, store.ErrLeased)
	}
	d.Due = due
	t.change(store.Change{Kind: store.ChangeOutbox})
	return d, t.putDelivery(d, nil)
}

func (t *tx) Drop(id uint64, now time.Time, reason string) (store.Delivery, error) {
	d, err := t.findDelivery(id)
	if err != nil {
		return store.Delivery{}, err
	}
	if d.Leased {
		return d, fmt.Errorf("delivery %d: %w", id, store.ErrLeased)
	}
	return d, t.Fail(d, now, reason)
}

// PutBlob stores a message refs deliveries share; it goes with the last of them.
func (t *tx) PutBlob(data []byte, refs int) (uint64, error) {
	var id int64
	if _, err := t.row("SELECT nextval('blob_ids')", nil, &id); err != nil {
		return 0, err
	}
	if data == nil {
		data = []byte{}
	}
	_, err := t.exec("INSERT INTO blobs VALUES ($1, $2, $3)", id, int64(refs), data)
	return uint64(id), err
}

func (t *tx) Blob(id uint64) ([]byte, error) {
	var data []byte
	found, err := t.row("SELECT data FROM blobs WHERE id = $1", args(int64(id)), &data)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("message %d: %w", id, store.ErrNotFound)
	}
	return data, nil
}

func (t *tx) unrefBlob(id uint64) error {
	if id == 0 {
		return nil
	}
	var refs int64
	found, err := t.row("UPDATE blobs SET refs = refs - 1 WHERE id = $1 RETURNING refs", args(int64(id)), &refs)
	if err != nil || !found || refs > 0 {
		return err
	}
	_, err = t.exec("DELETE FROM blobs WHERE id = $1", int64(id))
	return err
}
