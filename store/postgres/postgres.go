// Package postgres is crewmail's store on a PostgreSQL database that any number of crewmail
// processes (nodes) share: the roles of store (store.Tx, store.Backend) on tables created and
// migrated from the versioned SQL files it embeds, transactions retried on serialization
// failures, outbox leases that name their node, and the LISTEN/NOTIFY channel that tells each
// node what the others committed.
//
// Update runs SERIALIZABLE: every invariant the bbolt file gets from having one writer at a
// time (a gap-free archive sequence from the list's counter row, a digest cursor checked at
// commit, one member per address) holds across nodes, and a transaction that lost a conflict
// (SQLSTATE 40001, 40P01) is run again, as store.Backend.Update allows. A node's concurrent
// updates share a transaction (group commit, a savepoint each). View is a read-only
// REPEATABLE READ snapshot, which never fails for another transaction's writes.
package postgres

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	mrand "math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"crewmail/store"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrations are the schema's versions in order: migrations[v-1] makes schema v.
var migrations = func() []string {
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		panic(err)
	}
	slices.Sort(names)
	out := make([]string, len(names))
	for i, name := range names {
		// Files are named NNN_what.sql, numbered from 1 without gaps.
		n, err := strconv.Atoi(strings.SplitN(strings.TrimPrefix(name, "migrations/"), "_", 2)[0])
		if err != nil || n != i+1 {
			panic(fmt.Sprintf("postgres: migration %s is out of order", name))
		}
		b, err := migrationFiles.ReadFile(name)
		if err != nil {
			panic(err)
		}
		out[i] = string(b)
	}
	return out
}()

// SchemaVersion is the schema this code reads and writes.
var SchemaVersion = len(migrations)

// migrateLock is the advisory lock key under which a node creates or migrates the schema, so
// that nodes started together do not both do it.
const migrateLock = 0x63726577 // "crew"

// maxAttempts bounds how often Update runs a batch that keeps losing conflicts.
const maxAttempts = 200

// DB is an open PostgreSQL store. Its methods are safe for concurrent use.
type DB struct {
	pool *pgxpool.Pool
	// side answers Incarnation, which callers ask inside Update functions (a token made for a
	// notice) while their transaction holds a connection of pool: from pool, sixteen such
	// callers would wait for one another's connections for good.
	side   *pgxpool.Pool
	config *pgxpool.Config
	// node names this process among those sharing the database: the owner of its outbox
	// leases and the sender of its notifications. Made at Open, so a restarted process is a
	// new node and never takes itself for the one that held the leases before.
	node   string
	secret []byte
	// incarnations are the last ones read of each list (incarnation values), used for a
	// second after they are read, and when the database cannot be asked.
	incarnations sync.Map
	faults       faults

	calls   chan *call    // Update's calls, for the committer
	stopped chan struct{} // closed when the committer has stopped

	watchOnce sync.Once
	watchMu   sync.Mutex
	watchers  []func(store.Change)
	ctx       context.Context // cancelled by Close: ends the listener
	cancel    context.CancelFunc
	listening sync.WaitGroup
}

var (
	_ store.Backend = (*DB)(nil)
	_ store.Tx      = (*tx)(nil)
	_ store.Faulty  = (*DB)(nil)
	_ store.Watcher = (*DB)(nil)
)

// Open connects to the database dsn names (a postgres:// URL or key=value string; several
// hosts with target_session_attrs=read-write find the primary), creates or migrates its schema
// and reads the server's secret, making it when the database is new. A database whose schema
// is newer than this code is refused.
func Open(dsn string) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: the dsn does not parse: %w", err)
	}
	if !strings.Contains(dsn, "pool_max_conns") {
		cfg.MaxConns = 16
	}
	ctx, cancel := context.WithCancel(context.Background())
	db := &DB{config: cfg, node: newNode(), ctx: ctx, cancel: cancel}
	if db.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		cancel()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	side := cfg.Copy()
	side.MaxConns, side.MinConns = 2, 0
	if db.side, err = pgxpool.NewWithConfig(ctx, side); err != nil {
		db.pool.Close()
		cancel()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if err := db.prepare(); err != nil {
		db.pool.Close()
		db.side.Close()
		cancel()
		return nil, fmt.Errorf("postgres %s: %w", cfg.ConnConfig.Host, err)
	}
	db.calls, db.stopped = make(chan *call, 4*maxBatch), make(chan struct{})
	go db.committer()
	return db, nil
}

func newNode() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// prepare creates or migrates the schema and reads the secret, in one transaction under the
// migration lock.
func (db *DB) prepare() error {
	ctx := db.ctx
	return pgx.BeginFunc(ctx, db.pool, func(t pgx.Tx) error {
		if _, err := t.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", migrateLock); err != nil {
			return err
		}
		if _, err := t.Exec(ctx, "CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)"); err != nil {
			return err
		}
		version := 0
		err := t.QueryRow(ctx, "SELECT version FROM schema_version").Scan(&version)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			if _, err := t.Exec(ctx, "INSERT INTO schema_version VALUES (0)"); err != nil {
				return err
			}
		case err != nil:
			return err
		}
		if version > SchemaVersion {
			return fmt.Errorf("the database has schema version %d but this crewmail understands only up to %d; use a newer crewmail", version, SchemaVersion)
		}
		for v := version; v < SchemaVersion; v++ {
			if _, err := t.Exec(ctx, migrations[v]); err != nil {
				return fmt.Errorf("migrate schema %d to %d: %w", v, v+1, err)
			}
		}
		if _, err := t.Exec(ctx, "UPDATE schema_version SET version = $1", SchemaVersion); err != nil {
			return err
		}
		secret := make([]byte, 32)
		if _, err := rand.Read(secret); err != nil {
			return err
		}
		if _, err := t.Exec(ctx, "INSERT INTO meta VALUES ('secret', $1) ON CONFLICT DO NOTHING", secret); err != nil {
			return err
		}
		return t.QueryRow(ctx, "SELECT value FROM meta WHERE key = 'secret'").Scan(&db.secret)
	})
}

// Node is the name of this process among those sharing the database (see DB.node).
func (db *DB) Node() string { return db.node }

// Secret is the server's random secret, made when the database was created.
func (db *DB) Secret() []byte { return db.secret }

// Incarnation is the List.Incarnation of the list at address now, as committed (by any node);
// 0 when there is none. When the database cannot be asked, the last one read.
func (db *DB) Incarnation(list string) uint64 {
	v, _ := db.incarnations.Load(list)
	known, ok := v.(incarnation)
	if ok && time.Since(known.read) < incarnationFresh {
		return known.n
	}
	var inc int64
	err := db.side.QueryRow(db.ctx, "SELECT incarnation FROM lists WHERE address = $1", list).Scan(&inc)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		inc = 0
	case err != nil:
		return known.n
	}
	db.incarnations.Store(list, incarnation{uint64(inc), time.Now()})
	return uint64(inc)
}

// incarnation is a list's incarnation as read at a time.
type incarnation struct {
	n    uint64
	read time.Time
}

// incarnationFresh is how long an incarnation read is used without asking again: a list
// removed and made again at its address on another node is known here within it.
const incarnationFresh = time.Second

// Close ends the listener and closes every connection.
func (db *DB) Close() error {
	db.cancel()
	<-db.stopped
	db.listening.Wait()
	db.pool.Close()
	db.side.Close()
	return nil
}

// View runs fn in a read-only REPEATABLE READ transaction: one snapshot of the database.
func (db *DB) View(fn func(store.Tx) error) error {
	ctx := db.ctx
	ptx, err := db.begin(pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return err
	}
	defer ptx.Rollback(ctx) //nolint:errcheck // nothing was written
	t := newTx(db, ptx, false)
	if err := safeRun(fn, t); err != nil {
		return err
	}
	return t.err
}

// Update runs fn in a SERIALIZABLE transaction, durable when Update returns nil (store.Backend).
//
// The updates of this process share transactions (group commit, as on the bbolt file): a
// committer takes every call waiting, runs each function under a savepoint of its own — one
// that fails is rolled back to it and gets its error, the others stay — and commits them with
// one commit, one WAL flush. So the process's own updates never conflict with one another, and
// a busy node pays one commit for many posts. A batch that fails on a conflict with another
// node (serialization failure, deadlock, a unique key taken meanwhile) or loses its connection
// is run again from the start, with a short random pause, up to maxAttempts times: fn may run
// more than once, as store.Backend.Update allows.
func (db *DB) Update(fn func(store.Tx) error) error {
	c := &call{fn: fn, done: make(chan error, 1)}
	select {
	case db.calls <- c:
	case <-db.ctx.Done():
		return errClosed
	}
	select {
	case err := <-c.done:
		return err
	case <-db.stopped: // closed with the call still waiting: it was not run
		select {
		case err := <-c.done:
			return err
		default:
			return errClosed
		}
	}
}

var errClosed = errors.New("postgres: the store is closed")

// call is one Update waiting for its batch.
type call struct {
	fn   func(store.Tx) error
	done chan error
}

// maxBatch bounds the calls of one transaction: each is a subtransaction, and PostgreSQL keeps
// up to 64 of them per transaction in shared memory (beyond, every snapshot gets slower).
const maxBatch = 32

// committer runs the calls waiting, a batch at a time, until Close.
func (db *DB) committer() {
	defer close(db.stopped)
	batch := make([]*call, 0, maxBatch)
	for {
		select {
		case c := <-db.calls:
			batch = append(batch[:0], c)
		case <-db.ctx.Done():
			return
		}
	fill:
		for len(batch) < maxBatch {
			select {
			case c := <-db.calls:
				batch = append(batch, c)
			default:
				break fill
			}
		}
		db.runBatch(batch)
	}
}

// runBatch commits batch, again after conflicts, and answers every call.
func (db *DB) runBatch(batch []*call) {
	pause := 200 * time.Microsecond
	for attempt := 1; ; attempt++ {
		errs, err, again := db.tryBatch(batch)
		if again && attempt < maxAttempts && db.ctx.Err() == nil {
			time.Sleep(time.Duration(mrand.Int64N(int64(pause))))
			pause = min(2*pause, 50*time.Millisecond)
			continue
		}
		for i, c := range batch {
			if err != nil {
				c.done <- err
			} else {
				c.done <- errs[i]
			}
		}
		return
	}
}

// tryBatch runs the calls of batch in one transaction: errs are the calls' own errors, err
// one that fails them all (nothing was committed), again whether that is worth another try.
func (db *DB) tryBatch(batch []*call) (errs []error, err error, again bool) {
	ctx := db.ctx
	ptx, err := db.begin(pgx.TxOptions{IsoLevel: pgx.Serializable})
	if err != nil {
		return nil, err, false
	}
	errs = make([]error, len(batch))
	var kept []*tx
	fail := func(err error) ([]error, error, bool) {
		// A connection the server closed under the transaction (a restart, a failover, an
		// administrator) rolled it back: worth running again on another.
		lost := ptx.Conn().IsClosed() && ctx.Err() == nil
		_ = ptx.Rollback(ctx)
		return nil, err, conflict(err) || lost
	}
	for i, c := range batch {
		t := newTx(db, ptx, true)
		if len(batch) > 1 {
			t.later("SAVEPOINT call") // sent with its first statement
		}
		err := safeRun(c.fn, t)
		if t.err != nil {
			// A statement failed, and the transaction with it: whatever fn made of that
			// error (or did not), the cause decides.
			err = t.err
		}
		if err == nil {
			err = t.flush()
		}
		if err == nil {
			kept = append(kept, t)
			continue
		}
		if conflict(err) || len(batch) == 1 {
			return fail(err)
		}
		// The call failed on its own: what it wrote goes, the others' stays.
		t.deferred = pgx.Batch{} // the savepoint itself, when nothing was sent
		if t.sent {
			if _, rerr := ptx.Exec(ctx, "ROLLBACK TO SAVEPOINT call"); rerr != nil {
				return fail(fmt.Errorf("postgres: %w", rerr))
			}
		}
		errs[i] = err
	}
	changes := map[store.Change]bool{}
	for _, t := range kept {
		for c := range t.changes {
			changes[c] = true
		}
	}
	if err := db.announce(ctx, ptx, changes); err != nil {
		return fail(err)
	}
	if err := db.faults.commitErr(); err != nil {
		return fail(err)
	}
	if err := ptx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("postgres: commit: %w", err), conflict(err)
	}
	for _, t := range kept {
		for _, fn := range t.committed {
			fn()
		}
	}
	return errs, nil, false
}

// begin starts a transaction. A pooled connection the server closed meanwhile (a restart, a
// failover, an administrator) fails at BEGIN, before anything of the transaction ran: the
// pool's connections are made again and BEGIN is tried again, a few times.
func (db *DB) begin(opts pgx.TxOptions) (pgx.Tx, error) {
	for attempt := 1; ; attempt++ {
		ptx, err := db.pool.BeginTx(db.ctx, opts)
		if err == nil {
			return ptx, nil
		}
		if attempt == 4 || !lostConnection(err) || db.ctx.Err() != nil {
			return nil, fmt.Errorf("postgres: begin: %w", err)
		}
		// What ended one connection (after a failover: a primary gone) most likely ended
		// every idle one: make new ones, which find the server that takes writes now.
		db.pool.Reset()
	}
}

// lostConnection says whether err is a connection's end rather than a statement's failure.
func lostConnection(err error) bool {
	if pgconn.SafeToRetry(err) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		// Class 08: connection exception; 57P01-57P03: the server is shutting down, was
		// restarted, or an administrator ended the session.
		return strings.HasPrefix(pe.Code, "08") || pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P03"
	}
	return false
}

// conflict says whether err is PostgreSQL refusing a transaction for what a concurrent one did.
func conflict(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	switch pe.Code {
	case "40001", "40P01": // serialization_failure, deadlock_detected
		return true
	case "23505": // unique_violation: every insert is preceded by a read that found no row, so
		// another transaction inserted it since.
		return true
	}
	return false
}

// safeRun keeps a panicking caller from taking the process down with a transaction open.
func safeRun(fn func(store.Tx) error, t store.Tx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic in store transaction: %v", r)
		}
	}()
	return fn(t)
}
