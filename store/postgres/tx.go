package postgres

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"crewmail/store"
)

// tx is a transaction on the database: it plays every role (store.Tx).
type tx struct {
	db    *DB
	ctx   context.Context
	tx    pgx.Tx
	write bool
	// err is the first statement that failed: PostgreSQL aborts the transaction with it, so
	// it decides what Update does whatever the caller made of it.
	err error
	// lists known to exist in this transaction, and each one's merges as read (see merges).
	lists  map[string]bool
	merged map[string]map[uint64]merge
	// committed run once the transaction is committed (AfterCommit); changes are what other
	// nodes are told at the commit (announce).
	committed []func()
	changes   map[store.Change]bool
	// deferred are writes sent together before the next statement or the commit (a post's
	// deliveries: one round trip for all of them); ids are outbox IDs taken ahead, block at a
	// time (a gap left by IDs not used is of no consequence in the outbox).
	deferred pgx.Batch
	ids      []int64
	block    int
	// sent: a statement of this transaction (call) went to the server.
	sent bool
}

func newTx(db *DB, ptx pgx.Tx, write bool) *tx {
	return &tx{db: db, ctx: db.ctx, tx: ptx, write: write, lists: map[string]bool{}, merged: map[string]map[uint64]merge{}}
}

// AfterCommit runs fn once the transaction is committed, never when it is not, nor in a read
// transaction.
func (t *tx) AfterCommit(fn func()) {
	if t.write {
		t.committed = append(t.committed, fn)
	}
}

// fail records the first error of a statement (pgx.ErrNoRows is an answer, not a failure).
func (t *tx) fail(err error) error {
	if err != nil && !errors.Is(err, pgx.ErrNoRows) && t.err == nil {
		t.err = fmt.Errorf("postgres: %w", err)
	}
	return err
}

// flush sends the deferred writes; every statement and the commit come after it.
func (t *tx) flush() error {
	if t.deferred.Len() == 0 {
		return nil
	}
	err := t.tx.SendBatch(t.ctx, &t.deferred).Close()
	t.deferred = pgx.Batch{}
	t.sent = true
	return t.fail(err)
}

// later queues a write to go with the next statement.
func (t *tx) later(sql string, args ...any) {
	t.deferred.Queue(sql, args...)
}

func (t *tx) exec(sql string, args ...any) (pgconn.CommandTag, error) {
	if err := t.flush(); err != nil {
		return pgconn.CommandTag{}, err
	}
	t.sent = true
	tag, err := t.tx.Exec(t.ctx, sql, args...)
	return tag, t.fail(err)
}

// row runs a query of at most one row and scans it; found false when there is none.
func (t *tx) row(sql string, args []any, dest ...any) (found bool, err error) {
	if err := t.flush(); err != nil {
		return false, err
	}
	t.sent = true
	err = t.tx.QueryRow(t.ctx, sql, args...).Scan(dest...)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	return err == nil, t.fail(err)
}

// rows reads every row of a query, with scan called for each, before the caller runs anything
// else in the transaction (one connection carries one statement at a time).
func (t *tx) rows(sql string, args []any, scan func(r pgx.Rows) error) error {
	if err := t.flush(); err != nil {
		return err
	}
	t.sent = true
	r, err := t.tx.Query(t.ctx, sql, args...)
	if err != nil {
		return t.fail(err)
	}
	defer r.Close()
	for r.Next() {
		if err := scan(r); err != nil {
			return err
		}
	}
	return t.fail(r.Err())
}

func args(a ...any) []any { return a }

// list checks that list exists.
func (t *tx) list(list string) error {
	if t.lists[list] {
		return nil
	}
	var one int
	found, err := t.row("SELECT 1 FROM lists WHERE address = $1", args(list), &one)
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("list %s: %w", list, store.ErrNotFound)
	}
	t.lists[list] = true
	return nil
}

// change records what other nodes are told when this transaction commits.
func (t *tx) change(c store.Change) {
	if t.changes == nil {
		t.changes = map[store.Change]bool{}
	}
	t.changes[c] = true
}

func decode(what string, data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("damaged record %s: %w", what, err)
	}
	return nil
}

// Lists.

// CreateList stores a new list with a fresh incarnation; ErrExists if one is there.
func (t *tx) CreateList(l store.List) error {
	var one int
	found, err := t.row("SELECT 1 FROM lists WHERE address = $1", args(l.Address), &one)
	if err != nil {
		return err
	}
	if found {
		return fmt.Errorf("list %s: %w", l.Address, store.ErrExists)
	}
	for l.Incarnation == 0 {
		var r [8]byte
		if _, err := rand.Read(r[:]); err != nil {
			return err
		}
		l.Incarnation = binary.BigEndian.Uint64(r[:])
	}
	data, err := json.Marshal(l)
	if err != nil {
		return err
	}
	if _, err := t.exec("INSERT INTO lists (address, incarnation, data) VALUES ($1, $2, $3)", l.Address, int64(l.Incarnation), data); err != nil {
		return err
	}
	t.lists[l.Address] = true
	delete(t.merged, l.Address)
	t.AfterCommit(func() { t.db.incarnations.Store(l.Address, incarnation{l.Incarnation, time.Now()}) })
	return nil
}

// PutList replaces a list's settings; its incarnation stays what creation made it.
func (t *tx) PutList(l store.List) error {
	var inc int64
	found, err := t.row("SELECT incarnation FROM lists WHERE address = $1", args(l.Address), &inc)
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("list %s: %w", l.Address, store.ErrNotFound)
	}
	l.Incarnation = uint64(inc)
	data, err := json.Marshal(l)
	if err != nil {
		return err
	}
	_, err = t.exec("UPDATE lists SET data = $2 WHERE address = $1", l.Address, data)
	return err
}

func (t *tx) List(addr string) (store.List, error) {
	var l store.List
	var data []byte
	found, err := t.row("SELECT data FROM lists WHERE address = $1", args(addr), &data)
	if err != nil {
		return l, err
	}
	if !found {
		return l, fmt.Errorf("list %s: %w", addr, store.ErrNotFound)
	}
	return l, decode("list "+addr, data, &l)
}

// Lists returns every list, ordered by address (bytewise, as bbolt orders its keys).
func (t *tx) Lists() ([]store.List, error) {
	var out []store.List
	err := t.rows(`SELECT address, data FROM lists ORDER BY address COLLATE "C"`, nil, func(r pgx.Rows) error {
		var addr string
		var data []byte
		if err := r.Scan(&addr, &data); err != nil {
			return err
		}
		var l store.List
		if err := decode("list "+addr, data, &l); err != nil {
			return err
		}
		out = append(out, l)
		return nil
	})
	return out, err
}

func (t *tx) ListAddresses() ([]string, error) {
	var out []string
	err := t.rows(`SELECT address FROM lists ORDER BY address COLLATE "C"`, nil, func(r pgx.Rows) error {
		var addr string
		err := r.Scan(&addr)
		out = append(out, addr)
		return err
	})
	return out, err
}

// DeleteList removes a list with everything it keeps (the tables reference it ON DELETE
// CASCADE).
func (t *tx) DeleteList(addr string) error {
	tag, err := t.exec("DELETE FROM lists WHERE address = $1", addr)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("list %s: %w", addr, store.ErrNotFound)
	}
	delete(t.lists, addr)
	delete(t.merged, addr)
	t.AfterCommit(func() { t.db.incarnations.Store(addr, incarnation{0, time.Now()}) })
	return nil
}

// Members.

// putMember writes m's record and what follows from it: whether m receives each post, and her
// digest cursor.
func (t *tx) putMember(list string, m store.Member, insert bool) error {
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	receives := receivesEachPost(m)
	if insert {
		_, err = t.exec("INSERT INTO members (list, address, id, data, receives) VALUES ($1, $2, $3, $4, $5)", list, m.Address, int64(m.ID), data, receives)
	} else {
		_, err = t.exec("UPDATE members SET data = $3, receives = $4 WHERE list = $1 AND address = $2", list, m.Address, data, receives)
	}
	if err != nil {
		return err
	}
	return t.followCursor(list, m)
}

func (t *tx) AddMember(list string, m store.Member) (store.Member, error) {
	if err := t.list(list); err != nil {
		return m, err
	}
	var one int
	found, err := t.row("SELECT 1 FROM members WHERE list = $1 AND address = $2", args(list, m.Address), &one)
	if err != nil {
		return m, err
	}
	if found {
		return m, fmt.Errorf("%s on %s: %w", m.Address, list, store.ErrExists)
	}
	var id int64
	if _, err := t.row("UPDATE lists SET member_seq = member_seq + 1 WHERE address = $1 RETURNING member_seq", args(list), &id); err != nil {
		return m, err
	}
	m.ID = uint64(id)
	return m, t.putMember(list, m, true)
}

func (t *tx) PutMember(list string, m store.Member) error {
	if err := t.list(list); err != nil {
		return err
	}
	var one int
	found, err := t.row("SELECT 1 FROM members WHERE list = $1 AND address = $2", args(list, m.Address), &one)
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("%s on %s: %w", m.Address, list, store.ErrNotFound)
	}
	return t.putMember(list, m, false)
}

func (t *tx) member(list, where string, key any, what string) (store.Member, error) {
	var m store.Member
	if err := t.list(list); err != nil {
		return m, err
	}
	var data []byte
	found, err := t.row("SELECT data FROM members WHERE list = $1 AND "+where+" = $2", args(list, key), &data)
	if err != nil {
		return m, err
	}
	if !found {
		return m, fmt.Errorf("%s on %s: %w", what, list, store.ErrNotFound)
	}
	return m, decode("member "+what, data, &m)
}

func (t *tx) Member(list, addr string) (store.Member, error) {
	return t.member(list, "address", addr, addr)
}

func (t *tx) MemberByID(list string, id uint64) (store.Member, error) {
	return t.member(list, "id", int64(id), fmt.Sprintf("member %d", id))
}

func (t *tx) RemoveMember(list, addr string) error {
	if _, err := t.Member(list, addr); err != nil {
		return err
	}
	if _, err := t.exec("DELETE FROM members WHERE list = $1 AND address = $2", list, addr); err != nil {
		return err
	}
	_, err := t.exec("DELETE FROM cursors WHERE list = $1 AND address = $2", list, addr)
	return err
}

// Recipients are the members who receive each post, ordered by address as bbolt's roster is.
func (t *tx) Recipients(list string) ([]store.Recipient, error) {
	if err := t.list(list); err != nil {
		return nil, err
	}
	var out []store.Recipient
	err := t.rows(`SELECT id, address FROM members WHERE list = $1 AND receives ORDER BY address COLLATE "C"`, args(list), func(r pgx.Rows) error {
		var id int64
		var addr string
		if err := r.Scan(&id, &addr); err != nil {
			return err
		}
		out = append(out, store.Recipient{ID: uint64(id), Address: addr})
		return nil
	})
	return out, err
}

func (t *tx) Members(list string) ([]store.Member, error) {
	if err := t.list(list); err != nil {
		return nil, err
	}
	var out []store.Member
	err := t.rows(`SELECT address, data FROM members WHERE list = $1 ORDER BY address COLLATE "C"`, args(list), func(r pgx.Rows) error {
		var addr string
		var data []byte
		if err := r.Scan(&addr, &data); err != nil {
			return err
		}
		var m store.Member
		if err := decode("member "+addr, data, &m); err != nil {
			return err
		}
		out = append(out, m)
		return nil
	})
	return out, err
}

// Cursors.

func (t *tx) Cursor(list, addr string) (c store.Cursor, ok bool, err error) {
	if err := t.list(list); err != nil {
		return c, false, err
	}
	var data []byte
	found, err := t.row("SELECT data FROM cursors WHERE list = $1 AND address = $2", args(list, addr), &data)
	if err != nil || !found {
		return c, false, err
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return store.Cursor{}, false, fmt.Errorf("digest cursor of %s on %s: damaged record: %w", addr, list, err)
	}
	return c, true, nil
}

func (t *tx) PutCursor(list, addr string, c store.Cursor) error {
	if err := t.list(list); err != nil {
		return err
	}
	data, err := json.Marshal(c)
	if err != nil {
		return err
	}
	_, err = t.exec("INSERT INTO cursors VALUES ($1, $2, $3) ON CONFLICT (list, address) DO UPDATE SET data = excluded.data", list, addr, data)
	return err
}

// followCursor keeps a member's digest cursor in step with her mode (as the bbolt backend's).
func (t *tx) followCursor(list string, m store.Member) error {
	seq, err := t.LastSeq(list)
	if err != nil {
		return err
	}
	after, digest := digestStart(m, seq)
	if !digest {
		_, err := t.exec("DELETE FROM cursors WHERE list = $1 AND address = $2", list, m.Address)
		return err
	}
	data, err := json.Marshal(store.Cursor{Seq: after})
	if err != nil {
		return err
	}
	_, err = t.exec("INSERT INTO cursors VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", list, m.Address, data)
	return err
}

// IMAP access.

func (t *tx) SetAppPassword(addr string, p store.AppPassword) error {
	data, err := json.Marshal(p)
	if err != nil {
		return err
	}
	_, err = t.exec("INSERT INTO app_passwords VALUES ($1, $2) ON CONFLICT (address) DO UPDATE SET data = excluded.data", addr, data)
	return err
}

func (t *tx) AppPasswordOf(addr string) (store.AppPassword, error) {
	var p store.AppPassword
	var data []byte
	found, err := t.row("SELECT data FROM app_passwords WHERE address = $1", args(addr), &data)
	if err != nil {
		return p, err
	}
	if !found {
		return p, fmt.Errorf("app password of %s: %w", addr, store.ErrNotFound)
	}
	return p, decode("app password of "+addr, data, &p)
}

func (t *tx) ListsOf(addr string) ([]store.List, []store.Member, error) {
	var ls []store.List
	var ms []store.Member
	err := t.rows(`SELECT l.data, m.data FROM members m JOIN lists l ON l.address = m.list WHERE m.address = $1 ORDER BY l.address COLLATE "C"`, args(addr), func(r pgx.Rows) error {
		var ld, md []byte
		if err := r.Scan(&ld, &md); err != nil {
			return err
		}
		var l store.List
		var m store.Member
		if err := decode("list", ld, &l); err != nil {
			return err
		}
		if err := decode("member "+addr, md, &m); err != nil {
			return err
		}
		ls, ms = append(ls, l), append(ms, m)
		return nil
	})
	return ls, ms, err
}

// SetFlags records a member's flags on a post; the sessions of this member on other nodes are
// told at the commit.
func (t *tx) SetFlags(list string, member, seq uint64, flags byte) error {
	if err := t.list(list); err != nil {
		return err
	}
	var err error
	if flags == 0 {
		_, err = t.exec("DELETE FROM flags WHERE list = $1 AND member = $2 AND seq = $3", list, int64(member), int64(seq))
	} else {
		_, err = t.exec("INSERT INTO flags VALUES ($1, $2, $3, $4) ON CONFLICT (list, member, seq) DO UPDATE SET flags = excluded.flags",
			list, int64(member), int64(seq), int16(flags))
	}
	t.change(store.Change{Kind: store.ChangeFlags, List: list, Member: member})
	return err
}

func (t *tx) FlagsOf(list string, member uint64, fn func(seq uint64, flags byte) error) error {
	if err := t.list(list); err != nil {
		return err
	}
	type flag struct {
		seq   int64
		flags int16
	}
	var all []flag
	err := t.rows("SELECT seq, flags FROM flags WHERE list = $1 AND member = $2 ORDER BY seq", args(list, int64(member)), func(r pgx.Rows) error {
		var f flag
		err := r.Scan(&f.seq, &f.flags)
		all = append(all, f)
		return err
	})
	if err != nil {
		return err
	}
	for _, f := range all {
		if err := fn(uint64(f.seq), byte(f.flags)); err != nil {
			return err
		}
	}
	return nil
}

// TryJob takes the advisory lock of job name until the transaction ends, if no other
// transaction holds it (store.JobLocker).
func (t *tx) TryJob(name string) (bool, error) {
	var got bool
	_, err := t.row("SELECT pg_try_advisory_xact_lock(hashtext('crewmail job ' || $1))", args(name), &got)
	return got, err
}
