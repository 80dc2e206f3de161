// Package store owns crewmail's records and where they are kept: the roles a transaction plays
// (Lists, Members, Archive, Outbox … in roles.go, the boundary any backend implements and
// store/storetest checks, with Watcher and JobLocker for backends several processes share),
// the copy of a whole database between backends (Copier, Copy), and their backend on a single
// bbolt file: the schema, its version and migrations, and the group commit that makes every
// acknowledged write durable without one fsync per message.
//
// It is the only package that imports bbolt.
package store

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// SchemaVersion is the layout this code reads and writes. Opening a file with a newer version is
// refused; an older one is migrated (see migrations).
const SchemaVersion = 8

// FileName is the name of the database inside the data folder.
const FileName = "crewmail.db"

var (
	// ErrNotFound is returned when a list, member or post does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists is returned when creating something that is already there.
	ErrExists = errors.New("already exists")
	// ErrLocked is returned by Open when another process holds the database.
	ErrLocked = errors.New("the database is in use by another process")
	// ErrDamaged is returned by Open and CheckFile when the database's pages are damaged.
	ErrDamaged = errors.New("the database is damaged")
)

var (
	bucketMeta     = []byte("meta")
	bucketLists    = []byte("lists")
	bucketOutbox   = []byte("outbox")
	bucketFailures = []byte("failures")
	bucketBlobs    = []byte("blobs")     // messages many deliveries share (digests), by ID
	bucketBlobRefs = []byte("blob-refs") // how many outbox rows still carry each

	keyVersion = []byte("version")
	keySecret  = []byte("secret")
)

// Store is an open database. Its methods are safe for concurrent use.
type Store struct {
	db      *bolt.DB
	path    string
	secret  []byte
	commits chan *commit
	done    chan struct{}
	// incarnations: list address → List.Incarnation of the list there, kept in step with
	// committed creations and removals, for tokens made and checked outside transactions.
	incarnations sync.Map
	faults       faults  // failures tests inject (Faults)
	decoded      decoded // list settings and members as last decoded (see decoded)
}

// Open opens (creating if needed) the database in dir, checks its schema version and migrates
// an older file. It fails with ErrLocked when another process has the file open.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("create data folder %s: %w", dir, err)
	}
	return OpenFile(filepath.Join(dir, FileName))
}

// OpenFile is Open on the database file at path (crewmail migrate copies to and from files
// named so), in a folder that exists.
func OpenFile(path string) (*Store, error) {
	// bbolt keeps the free list on disk (written with each commit), so opening reads the meta
	// and free-list pages only, whatever the file's size, and maps no other page. A file whose
	// free list is not on disk (crewmail wrote files without it before) has it rebuilt by
	// bbolt at this opening, once, by reading every page in a goroutine of its own, where a
	// damaged page's panic cannot be recovered and kills the process: walk reads every page
	// here first, where it can. Damage found later, in a transaction, is an error of that
	// transaction (View and Update recover it); "crewmail check-db" reads every page.
	if onDisk, err := freelistOnDisk(path); err != nil {
		return nil, err
	} else if !onDisk {
		db, err := openBolt(path, &bolt.Options{Timeout: time.Second, ReadOnly: true})
		if err != nil {
			return nil, err
		}
		err = walk(db, path)
		if cerr := db.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("open %s: %w", path, cerr)
		}
		if err != nil {
			return nil, err
		}
	}
	db, err := openBolt(path, &bolt.Options{Timeout: time.Second, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return nil, err
	}
	s := &Store{db: db, path: path, commits: make(chan *commit, 256), done: make(chan struct{})}
	if err := s.prepare(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	// Opening maps what migrations and the lists' configurations read; give it back.
	if err := s.ReleaseMapped(); err != nil {
		db.Close()
		return nil, err
	}
	go s.committer()
	// A backup restored from before a redaction gets it again (see Store.Journal).
	if _, err := s.replayJournal(); err != nil {
		s.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return s, nil
}

// prepare creates the top-level buckets, checks the schema version and runs migrations.
func (s *Store) prepare() error {
	return s.db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		version := uint64(0)
		if v := meta.Get(keyVersion); v != nil {
			if len(v) != 8 {
				return fmt.Errorf("damaged schema version record")
			}
			version = binary.BigEndian.Uint64(v)
		}
		if version > SchemaVersion {
			return fmt.Errorf("the database has schema version %d but this crewmail understands only up to %d; use a newer crewmail", version, SchemaVersion)
		}
		for v := version; v < SchemaVersion; v++ {
			if err := migrations[v](tx); err != nil {
				return fmt.Errorf("migrate schema %d to %d: %w", v, v+1, err)
			}
			if err := meta.Put(keyVersion, u64(v+1)); err != nil {
				return err
			}
		}
		secret := meta.Get(keySecret)
		if secret == nil {
			secret = make([]byte, 32)
			if _, err := rand.Read(secret); err != nil {
				return err
			}
			if err := meta.Put(keySecret, secret); err != nil {
				return err
			}
		}
		s.secret = append([]byte(nil), secret...)
		if err := makeWebBuckets(tx); err != nil {
			return err
		}
		return tx.Bucket(bucketLists).ForEachBucket(func(k []byte) error {
			var l List
			if err := getJSON(tx.Bucket(bucketLists).Bucket(k), keyConfig, &l); err != nil {
				return fmt.Errorf("list %s: %w", k, err)
			}
			s.incarnations.Store(string(k), l.Incarnation)
			return nil
		})
	})
}

// migrations[v] turns a schema-v file into schema v+1. Each must be idempotent.
var migrations = []func(tx *bolt.Tx) error{
	// 0 → 1: the initial layout.
	func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketLists, bucketOutbox, bucketFailures} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	},
	// 1 → 2: every list gets a bucket of held posts (waiting for their author's confirmation).
	addListBuckets(subHeld),
	// 2 → 3: every list gets its roster of who receives each post.
	func(tx *bolt.Tx) error {
		return tx.Bucket(bucketLists).ForEachBucket(func(k []byte) error {
			return writeRoster(tx.Bucket(bucketLists).Bucket(k))
		})
	},
	// 3 → 4: every list gets its pending actions (joins, invitations, mode changes waiting for
	// a confirmation).
	addListBuckets(subPending, subPendKeys),
	// 4 → 5: shared messages (digests) for the outbox, IMAP app passwords; every list gets
	// its thread index, IMAP flags (each archived post's Message-ID → its thread),
	// subject index, thread mutes and digest cursors (digest members start after what is
	// archived now).
	func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketBlobs, bucketBlobRefs, bucketPasswords} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketLists).ForEachBucket(func(k []byte) error {
			l := tx.Bucket(bucketLists).Bucket(k)
			for _, name := range [][]byte{subThreadIDs, subSubjects, subMutes, subCursors, subFlags} {
				if _, err := l.CreateBucketIfNotExists(name); err != nil {
					return err
				}
			}
			tids := l.Bucket(subThreadIDs)
			if err := l.Bucket(subPosts).ForEach(func(_, v []byte) error {
				var p Post
				if err := json.Unmarshal(v, &p); err != nil {
					return err
				}
				return tids.Put([]byte(p.MessageID), u64(p.Thread))
			}); err != nil {
				return err
			}
			return l.Bucket(subMembers).ForEach(func(_, v []byte) error {
				var m Member
				if err := json.Unmarshal(v, &m); err != nil {
					return err
				}
				return followCursor(l, m)
			})
		})
	},
	// 5 → 6: every list gets its record of merged threads (merges no longer rewrite the
	// records of the threads they merge).
	addListBuckets(subMerged),
	// 6 → 7: mail to bounce addresses was kept whole, forever; keep each list's latest
	// MaxBounces, each as a Bounce record with a bounded head. Also new in 7, with nothing
	// to rewrite: merges are numbered and mutes record the number when made (older ones
	// count as 0, see Muted); lists get an incarnation at creation (older ones have none
	// and keep the form of the tokens they mailed).
	func(tx *bolt.Tx) error {
		return tx.Bucket(bucketLists).ForEachBucket(func(k []byte) error {
			bounces := tx.Bucket(bucketLists).Bucket(k).Bucket(subBounces)
			last := bounces.Sequence()
			if err := trimBounces(bounces, last); err != nil {
				return err
			}
			type old struct {
				k, head []byte
				size    int
			}
			var rewrite []old
			if err := bounces.ForEach(func(k, v []byte) error {
				var b Bounce
				if json.Unmarshal(v, &b) != nil { // whole messages, as schema 6 kept them
					rewrite = append(rewrite, old{slices.Clone(k), slices.Clone(v[:min(len(v), MaxBounceHead)]), len(v)})
				}
				return nil
			}); err != nil {
				return err
			}
			for _, o := range rewrite {
				if err := putJSON(bounces, o.k, Bounce{Size: o.size, Head: o.head}); err != nil {
					return err
				}
			}
			return nil
		})
	},
	// 7 → 8: every list gets an empty search index. It is not complete (SearchIndexed) until
	// crewmail reindex fills it; IMAP searches the old way meanwhile.
	addListBuckets(searchSubs...),
}

// addListBuckets is a migration that gives every list the sub-buckets names, empty.
func addListBuckets(names ...[]byte) func(tx *bolt.Tx) error {
	return func(tx *bolt.Tx) error {
		return tx.Bucket(bucketLists).ForEachBucket(func(k []byte) error {
			for _, name := range names {
				if _, err := tx.Bucket(bucketLists).Bucket(k).CreateBucketIfNotExists(name); err != nil {
					return err
				}
			}
			return nil
		})
	}
}

// Path is the database file's path.
func (s *Store) Path() string { return s.path }

// Secret is the server's random secret, made when the database was created; tokens and VERP
// addresses are signed with keys derived from it.
func (s *Store) Secret() []byte { return s.secret }

// Close stops the committer and closes the file.
func (s *Store) Close() error {
	close(s.done)
	return s.db.Close()
}

// View runs fn in a read-only transaction (Backend.View). A damaged page met on the way (bbolt
// panics, or faults on a page outside the file) is an error of this read, not the end of the
// process (see readPanic).
func (s *Store) View(fn func(Tx) error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = s.readPanic(r)
		}
	}()
	return s.db.View(func(btx *bolt.Tx) error { return fn(&boltTx{tx: btx}) })
}

// readPanic is the error of a transaction that panicked: bbolt trusts its pages, and a
// damaged one makes it panic wherever it is read. Open no longer reads every page (see Open),
// so this is where damage shows while serving; the transaction is rolled back by bbolt.
func (s *Store) readPanic(r any) error {
	return &damagedError{s.path, oneLine(r)}
}

// Update runs fn in a read-write transaction that is on disk (fsync'd) when Update returns nil.
// Concurrent calls share one commit (group commit), so fn may run more than once if another
// caller's function fails in the same batch: fn must set its results afresh on every run and
// have no effects outside the transaction; what must happen once it is on disk, fn asks for
// with Tx.AfterCommit (the contract of Backend.Update).
func (s *Store) Update(fn func(Tx) error) error {
	c := &commit{fn: fn, done: make(chan error, 1)}
	select {
	case s.commits <- c:
	case <-s.done:
		return errors.New("store closed")
	}
	return <-c.done
}

type commit struct {
	fn   func(Tx) error
	done chan error
}

// maxBatch bounds how many callers share one transaction.
const maxBatch = 256

// committer runs queued updates. While one transaction is being written and fsync'd, new
// callers queue; the next transaction takes all of them. There is no timer: a lone writer pays
// one fsync, and many writers share one.
func (s *Store) committer() {
	batch := make([]*commit, 0, maxBatch)
	for {
		select {
		case c := <-s.commits:
			batch = append(batch[:0], c)
		case <-s.done:
			return
		}
	fill:
		for len(batch) < maxBatch {
			select {
			case c := <-s.commits:
				batch = append(batch, c)
			default:
				break fill
			}
		}
		s.runBatch(batch)
	}
}

// runBatch commits batch in one transaction. A function that fails is answered with its error
// and the rest are run again without it.
func (s *Store) runBatch(batch []*commit) {
	for len(batch) > 0 {
		failed := -1
		var fnErr error
		var tx *boltTx
		err := s.commitBatch(func(btx *bolt.Tx) error {
			tx = &boltTx{tx: btx, st: s}
			for i, c := range batch {
				if err := s.safeRun(c.fn, tx); err != nil {
					failed, fnErr = i, err
					return err
				}
			}
			return s.faults.commitErr()
		})
		if failed < 0 {
			if err == nil {
				for _, fn := range tx.committed {
					fn()
				}
			}
			for _, c := range batch {
				c.done <- err
			}
			return
		}
		batch[failed].done <- fnErr
		batch = append(batch[:failed:failed], batch[failed+1:]...)
	}
}

// commitBatch is db.Update that turns a panic of bbolt's own (a damaged page met while
// committing) into the batch's error instead of taking the committer down.
func (s *Store) commitBatch(fn func(*bolt.Tx) error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = s.readPanic(r)
		}
	}()
	return s.db.Update(fn)
}

// safeRun keeps a panicking caller from taking the committer down with it.
func (s *Store) safeRun(fn func(Tx) error, tx Tx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic in store update: %v", r)
		}
	}()
	return fn(tx)
}

// boltTx is a transaction on the bbolt file: it plays every role (Tx).
type boltTx struct {
	tx *bolt.Tx
	st *Store // nil in read transactions
	// committed run once the transaction is on disk (AfterCommit).
	committed []func()
}

// Incarnation is the List.Incarnation of the list at address now, 0 when there is none (or
// the list is older than incarnations).
func (s *Store) Incarnation(list string) uint64 {
	v, _ := s.incarnations.Load(list)
	inc, _ := v.(uint64)
	return inc
}

func u64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

// Backup writes a consistent copy of the whole database to path while the server runs (one
// read transaction; writers are not held up), fsyncs it and returns its size. The copy is
// written beside path first and renamed, so path is never a partial file.
func (s *Store) Backup(path string) (int64, error) {
	tmp := path + ".partial"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	var n int64
	err = s.db.View(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(f)
		return err
	})
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return 0, fmt.Errorf("backup to %s: %w", path, err)
	}
	return n, nil
}

// Check verifies the database's internal structure (every page reachable once, no page both
// used and free) and returns the first fault found.
func (s *Store) Check() error {
	problems, err := s.Problems()
	if err != nil {
		return err
	}
	if len(problems) > 0 {
		return fmt.Errorf("database %s: %s", s.path, problems[0])
	}
	return nil
}
