package postgres

import (
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"crewmail/store"
)

var _ store.Copier = (*DB)(nil)

// copiedLease names the holder of the leases a copy brings: the process that held them is
// stopped (a copy is made with the servers stopped), so they run out as a dead node's do.
const copiedLease = "copied"

// Dump calls fn for every record, in one read-only REPEATABLE READ snapshot (store.Copier).
func (db *DB) Dump(fn func(store.Record) error) error {
	ctx := db.ctx
	ptx, err := db.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("postgres: begin: %w", err)
	}
	defer ptx.Rollback(ctx) //nolint:errcheck // nothing was written
	// each streams the rows of a query into fn (which writes elsewhere, never here).
	each := func(sql string, a []any, rec func(r pgx.Rows) (store.Record, error)) error {
		rows, err := ptx.Query(ctx, sql, a...)
		if err != nil {
			return fmt.Errorf("postgres: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			r, err := rec(rows)
			if err != nil {
				return fmt.Errorf("postgres: %w", err)
			}
			if err := fn(r); err != nil {
				return err
			}
		}
		return rows.Err()
	}
	var secret []byte
	if err := ptx.QueryRow(ctx, "SELECT value FROM meta WHERE key = 'secret'").Scan(&secret); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	if err := fn(store.Record{Kind: store.RecSecret, Data: secret}); err != nil {
		return err
	}
	var outboxSeq, blobSeq int64
	if err := ptx.QueryRow(ctx, `SELECT (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM outbox_ids),
		(SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM blob_ids)`).Scan(&outboxSeq, &blobSeq); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	if err := fn(store.Record{Kind: store.RecSequences, Nums: []uint64{uint64(outboxSeq), uint64(blobSeq)}}); err != nil {
		return err
	}
	var lists []string
	if err := each(`SELECT address, data, seq, member_seq, held_seq, pending_seq, bounce_seq, merge_seq FROM lists ORDER BY address COLLATE "C"`, nil,
		func(r pgx.Rows) (store.Record, error) {
			var rec store.Record
			var n [6]int64
			err := r.Scan(&rec.List, &rec.Data, &n[0], &n[1], &n[2], &n[3], &n[4], &n[5])
			rec.Kind = store.RecList
			for _, v := range n {
				rec.Nums = append(rec.Nums, uint64(v))
			}
			lists = append(lists, rec.List)
			return rec, err
		}); err != nil {
		return err
	}
	nums := func(vs ...int64) []uint64 {
		out := make([]uint64, len(vs))
		for i, v := range vs {
			out[i] = uint64(v)
		}
		return out
	}
	for _, list := range lists {
		l := []any{list}
		steps := []struct {
			sql string
			rec func(r pgx.Rows) (store.Record, error)
		}{
			{`SELECT data FROM members WHERE list = $1 ORDER BY address COLLATE "C"`, func(r pgx.Rows) (store.Record, error) {
				rec := store.Record{Kind: store.RecMember, List: list}
				return rec, r.Scan(&rec.Data)
			}},
			{"SELECT seq, meta, raw FROM posts WHERE list = $1 ORDER BY seq", func(r pgx.Rows) (store.Record, error) {
				rec := store.Record{Kind: store.RecPost, List: list}
				var seq int64
				err := r.Scan(&seq, &rec.Data, &rec.Raw)
				rec.Nums = nums(seq)
				return rec, err
			}},
			{`SELECT message_id, thread FROM thread_ids WHERE list = $1 ORDER BY message_id COLLATE "C"`, func(r pgx.Rows) (store.Record, error) {
				rec := store.Record{Kind: store.RecThreadID, List: list}
				var th int64
				err := r.Scan(&rec.Key, &th)
				rec.Nums = nums(th)
				return rec, err
			}},
			{`SELECT subject, thread, date FROM subjects WHERE list = $1 ORDER BY subject COLLATE "C"`, func(r pgx.Rows) (store.Record, error) {
				rec := store.Record{Kind: store.RecSubject, List: list}
				var th, date int64
				err := r.Scan(&rec.Key, &th, &date)
				rec.Nums = nums(th, date)
				return rec, err
			}},
			{"SELECT thread, into_thread, stamp FROM merged WHERE list = $1 ORDER BY thread", func(r pgx.Rows) (store.Record, error) {
				rec := store.Record{Kind: store.RecMerge, List: list}
				var th, into, stamp int64
				err := r.Scan(&th, &into, &stamp)
				rec.Nums = nums(th, into, stamp)
				return rec, err
			}},
			{"SELECT kind, thread, member, stamp FROM marks WHERE list = $1 ORDER BY kind, thread, member", func(r pgx.Rows) (store.Record, error) {
				rec := store.Record{Kind: store.RecMark, List: list}
				var th, member, stamp int64
				err := r.Scan(&rec.Key, &th, &member, &stamp)
				rec.Nums = nums(th, member, stamp)
				return rec, err
			}},
			{`SELECT address, data FROM cursors WHERE list = $1 ORDER BY address COLLATE "C"`, func(r pgx.Rows) (store.Record, error) {
				rec := store.Record{Kind: store.RecCursor, List: list}
				return rec, r.Scan(&rec.Key, &rec.Data)
			}},
			{"SELECT member, seq, flags FROM flags WHERE list = $1 ORDER BY member, seq", func(r pgx.Rows) (store.Record, error) {
				rec := store.Record{Kind: store.RecFlags, List: list}
				var member, seq int64
				var flags int16
				err := r.Scan(&member, &seq, &flags)
				rec.Nums = nums(member, seq, int64(flags))
				return rec, err
			}},
			{"SELECT id, data FROM bounces WHERE list = $1 ORDER BY id", idData(store.RecBounce, list)},
			{"SELECT id, data FROM held WHERE list = $1 ORDER BY id", idData(store.RecHeld, list)},
			{"SELECT id, data FROM pending WHERE list = $1 ORDER BY id", idData(store.RecPending, list)},
			{"SELECT seq, doc, other FROM search_docs WHERE list = $1 ORDER BY seq", func(r pgx.Rows) (store.Record, error) {
				rec := store.Record{Kind: store.RecSearchDoc, List: list}
				var seq int64
				var doc []byte
				var other string
				if err := r.Scan(&seq, &doc, &other); err != nil {
					return rec, err
				}
				d, err := store.DecodeSearchDoc(doc)
				if err != nil {
					return rec, fmt.Errorf("search document %d of %s: %w", seq, list, err)
				}
				d.Other = other
				rec.Nums, rec.Data = nums(seq), d.Encode()
				return rec, nil
			}},
		}
		for _, s := range steps {
			if err := each(s.sql, l, s.rec); err != nil {
				return err
			}
		}
	}
	if err := each("SELECT data FROM outbox ORDER BY due, id", nil, func(r pgx.Rows) (store.Record, error) {
		rec := store.Record{Kind: store.RecDelivery}
		return rec, r.Scan(&rec.Data)
	}); err != nil {
		return err
	}
	if err := each("SELECT id, data FROM failures ORDER BY id", nil, idData(store.RecFailure, "")); err != nil {
		return err
	}
	if err := each("SELECT id, refs, data FROM blobs ORDER BY id", nil, func(r pgx.Rows) (store.Record, error) {
		rec := store.Record{Kind: store.RecBlob}
		var id, refs int64
		err := r.Scan(&id, &refs, &rec.Data)
		rec.Nums = nums(id, refs)
		return rec, err
	}); err != nil {
		return err
	}
	return each(`SELECT address, data FROM app_passwords ORDER BY address COLLATE "C"`, nil, func(r pgx.Rows) (store.Record, error) {
		rec := store.Record{Kind: store.RecPassword}
		return rec, r.Scan(&rec.Key, &rec.Data)
	})
}

func idData(kind store.RecordKind, list string) func(r pgx.Rows) (store.Record, error) {
	return func(r pgx.Rows) (store.Record, error) {
		rec := store.Record{Kind: kind, List: list}
		var id int64
		err := r.Scan(&id, &rec.Data)
		rec.Nums = []uint64{uint64(id)}
		return rec, err
	}
}

// loader writes records into the database in one transaction: a copy is there whole or not
// at all.
type loader struct {
	db    *DB
	tx    pgx.Tx
	batch pgx.Batch
	lists []string
	// indexed counts each list's search documents, for its search_count at Close.
	indexed map[string]int64
}

// loadBatch is how many statements go to the server in one round trip.
const loadBatch = 500

// Loader starts loading records into the database, which must be empty (store.Copier).
func (db *DB) Loader() (store.Loader, error) {
	ptx, err := db.pool.Begin(db.ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres: begin: %w", err)
	}
	var n int64
	if err := ptx.QueryRow(db.ctx, `SELECT (SELECT count(*) FROM lists) + (SELECT count(*) FROM outbox)
		+ (SELECT count(*) FROM failures) + (SELECT count(*) FROM app_passwords)`).Scan(&n); err != nil {
		_ = ptx.Rollback(db.ctx)
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if n > 0 {
		_ = ptx.Rollback(db.ctx)
		return nil, store.ErrNotEmpty
	}
	return &loader{db: db, tx: ptx, indexed: map[string]int64{}}, nil
}

func (l *loader) queue(sql string, a ...any) error {
	l.batch.Queue(sql, a...)
	if l.batch.Len() >= loadBatch {
		return l.flush()
	}
	return nil
}

func (l *loader) flush() error {
	if l.batch.Len() == 0 {
		return nil
	}
	err := l.tx.SendBatch(l.db.ctx, &l.batch).Close()
	l.batch = pgx.Batch{}
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	return nil
}

func need(r store.Record, n int) error {
	if len(r.Nums) < n {
		return fmt.Errorf("the record has %d numbers, want %d", len(r.Nums), n)
	}
	return nil
}

// Add queues the statement that writes r (its bytes are copied by the batch).
func (l *loader) Add(r store.Record) error {
	if err := l.add(r); err != nil {
		_ = l.tx.Rollback(l.db.ctx)
		return err
	}
	return nil
}

func (l *loader) add(r store.Record) error {
	n := func(i int) int64 { return int64(r.Nums[i]) }
	counts := map[store.RecordKind]int{
		store.RecSequences: 2, store.RecList: 6, store.RecPost: 1, store.RecThreadID: 1, store.RecSubject: 2,
		store.RecMerge: 3, store.RecMark: 3, store.RecFlags: 3, store.RecBounce: 1, store.RecHeld: 1,
		store.RecPending: 1, store.RecFailure: 1, store.RecBlob: 2, store.RecSearchDoc: 1,
	}
	if err := need(r, counts[r.Kind]); err != nil {
		return err
	}
	data := append([]byte{}, r.Data...)
	switch r.Kind {
	case store.RecSecret:
		return l.queue("UPDATE meta SET value = $1 WHERE key = 'secret'", data)
	case store.RecSequences:
		return l.queue("SELECT setval('outbox_ids', greatest($1::bigint, 1), $1::bigint > 0), setval('blob_ids', greatest($2::bigint, 1), $2::bigint > 0)", n(0), n(1))
	case store.RecList:
		var c store.List
		if err := json.Unmarshal(r.Data, &c); err != nil {
			return err
		}
		l.lists = append(l.lists, r.List)
		return l.queue("INSERT INTO lists VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
			r.List, int64(c.Incarnation), data, n(0), n(1), n(2), n(3), n(4), n(5))
	case store.RecMember:
		var m store.Member
		if err := json.Unmarshal(r.Data, &m); err != nil {
			return err
		}
		return l.queue("INSERT INTO members VALUES ($1, $2, $3, $4, $5)", r.List, m.Address, int64(m.ID), data, receivesEachPost(m))
	case store.RecPost:
		var p store.Post
		if err := json.Unmarshal(r.Data, &p); err != nil {
			return err
		}
		return l.queue("INSERT INTO posts VALUES ($1, $2, $3, $4, $5)", r.List, n(0), p.MessageID, data, append([]byte{}, r.Raw...))
	case store.RecThreadID:
		return l.queue("INSERT INTO thread_ids VALUES ($1, $2, $3)", r.List, r.Key, n(0))
	case store.RecSubject:
		return l.queue("INSERT INTO subjects VALUES ($1, $2, $3, $4)", r.List, r.Key, n(0), n(1))
	case store.RecMerge:
		return l.queue("INSERT INTO merged VALUES ($1, $2, $3, $4)", r.List, n(0), n(1), n(2))
	case store.RecMark:
		return l.queue("INSERT INTO marks VALUES ($1, $2, $3, $4, $5)", r.List, r.Key, n(0), n(1), n(2))
	case store.RecCursor:
		return l.queue("INSERT INTO cursors VALUES ($1, $2, $3)", r.List, r.Key, data)
	case store.RecFlags:
		return l.queue("INSERT INTO flags VALUES ($1, $2, $3, $4)", r.List, n(0), n(1), int16(n(2)))
	case store.RecBounce:
		return l.queue("INSERT INTO bounces VALUES ($1, $2, $3)", r.List, n(0), data)
	case store.RecHeld:
		return l.queue("INSERT INTO held VALUES ($1, $2, $3)", r.List, n(0), data)
	case store.RecPending:
		var p store.Pending
		if err := json.Unmarshal(r.Data, &p); err != nil {
			return err
		}
		// bbolt finds a pending action by kind and address through an index the latest one
		// wrote; an older record of the same kind and address is not copied twice.
		return l.queue(`INSERT INTO pending VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (list, kind, address) DO UPDATE SET id = excluded.id, data = excluded.data`, r.List, n(0), p.Kind, p.Address, data)
	case store.RecDelivery:
		var d store.Delivery
		if err := json.Unmarshal(r.Data, &d); err != nil {
			return err
		}
		var lease *string
		if d.Leased {
			s := copiedLease
			lease = &s
		}
		return l.queue("INSERT INTO outbox VALUES ($1, $2, $3, $4)", int64(d.ID), d.Due.UnixNano(), lease, data)
	case store.RecFailure:
		return l.queue("INSERT INTO failures VALUES ($1, $2)", n(0), data)
	case store.RecBlob:
		return l.queue("INSERT INTO blobs VALUES ($1, $2, $3)", n(0), n(1), data)
	case store.RecPassword:
		return l.queue("INSERT INTO app_passwords VALUES ($1, $2)", r.Key, data)
	case store.RecSearchDoc:
		d, err := store.DecodeSearchDoc(r.Data)
		if err != nil {
			return fmt.Errorf("search document %d: %w", r.Nums[0], err)
		}
		row := searchRow(r.List, r.Nums[0], d)
		l.indexed[r.List]++
		return l.queue(insertSearchDoc, row...)
	}
	return fmt.Errorf("unknown kind of record %q", r.Kind)
}

// Close writes what is queued and commits; the secret loaded becomes this handle's.
func (l *loader) Close() error {
	ctx := l.db.ctx
	for _, list := range l.lists {
		if err := l.queue("UPDATE lists SET search_count = $2 WHERE address = $1", list, l.indexed[list]); err != nil {
			_ = l.tx.Rollback(ctx)
			return err
		}
	}
	if err := l.flush(); err != nil {
		_ = l.tx.Rollback(ctx)
		return err
	}
	var secret []byte
	if err := l.tx.QueryRow(ctx, "SELECT value FROM meta WHERE key = 'secret'").Scan(&secret); err != nil {
		_ = l.tx.Rollback(ctx)
		return fmt.Errorf("postgres: %w", err)
	}
	if err := l.tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: commit: %w", err)
	}
	l.db.secret = secret
	return nil
}
