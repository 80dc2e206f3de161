package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"runtime/debug"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Damage. bbolt trusts its pages: a damaged one makes it panic, and at opening (when it rebuilds
// the free list) and in tx.Check it does so in goroutines of its own, which no caller can
// recover. Open therefore reads every page first in its own goroutine (walk) and refuses a
// damaged file in one sentence; CheckFile does the same and then runs bbolt's full check.

// damagedError says that the file at path is damaged and what to do.
type damagedError struct{ path, detail string }

func (e *damagedError) Error() string {
	return fmt.Sprintf("the database %s is damaged (%s); run \"crewmail check-db\" to see what is wrong, and restore it from a backup", e.path, e.detail)
}

func (e *damagedError) Unwrap() error { return ErrDamaged }

// openBolt opens the file at path, turning bbolt's errors and panics into ours. A panic while
// opening leaves bbolt's file open and locked: it is closed here, so the file can be checked
// or opened again (its memory map stays until the process ends; it refuses to start anyway).
func openBolt(path string, opts *bolt.Options) (db *bolt.DB, err error) {
	var file *os.File
	opts.OpenFile = func(name string, flag int, perm os.FileMode) (*os.File, error) {
		f, err := os.OpenFile(name, flag, perm)
		file = f
		return f, err
	}
	defer func() {
		if r := recover(); r != nil {
			if file != nil {
				file.Close()
			}
			db, err = nil, &damagedError{path, oneLine(r)}
		}
	}()
	db, err = bolt.Open(path, 0o600, opts)
	switch {
	case err == nil:
		return db, nil
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("open %s: %w", path, ErrLocked)
	case errors.Is(err, berrors.ErrInvalid) || errors.Is(err, berrors.ErrChecksum) || errors.Is(err, berrors.ErrVersionMismatch):
		return nil, fmt.Errorf("open %s: it is not a crewmail database or it is damaged (%w); restore it from a backup (crewmail backup) or move it away to start afresh", path, err)
	}
	return nil, fmt.Errorf("open %s: %w", path, err)
}

// walk reads every branch and leaf page of db (every key of every bucket), as bbolt's own scan
// at opening does, but in this goroutine, where the panic of a damaged page is recovered (a
// page pointer that leads outside the file faults: SetPanicOnFault makes that a panic too).
func walk(db *bolt.DB, path string) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = &damagedError{path, oneLine(r)}
		}
	}()
	return db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(_ []byte, b *bolt.Bucket) error {
			walkBucket(b)
			return nil
		})
	})
}

func walkBucket(b *bolt.Bucket) {
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if v == nil {
			if child := b.Bucket(k); child != nil {
				walkBucket(child)
			}
		}
	}
}

// maxProblems bounds what a check reports: one damaged page can make thousands.
const maxProblems = 20

// CheckFile checks the database in dir while no server has it open: it reads every page, then
// runs bbolt's consistency check (every page reachable once, none both used and free, keys in
// order). It returns what is wrong, nothing when the file is sound; the error is for a file
// it could not check at all (missing, locked, not a database).
func CheckFile(dir string) ([]string, error) {
	path := dir + string(os.PathSeparator) + FileName
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("no database to check: %w", err)
	}
	db, err := openBolt(path, &bolt.Options{Timeout: time.Second, ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer db.Close()
	var damaged *damagedError
	if err := walk(db, path); errors.As(err, &damaged) {
		return []string{damaged.detail}, nil
	} else if err != nil {
		return nil, err
	}
	return check(db)
}

// Problems reads every page of the open database and runs bbolt's consistency check (read
// transactions: the server goes on serving) and returns what is wrong, nothing when it is
// sound. The pages are read here first, as CheckFile does: bbolt's check runs in a goroutine
// of its own, where a damaged page's panic would end the server.
func (s *Store) Problems() ([]string, error) {
	defer s.ReleaseMapped() // the walk mapped the whole file
	var damaged *damagedError
	if err := walk(s.db, s.path); errors.As(err, &damaged) {
		return []string{damaged.detail}, nil
	} else if err != nil {
		return nil, err
	}
	return check(s.db)
}

func check(db *bolt.DB) ([]string, error) {
	var out []string
	err := db.View(func(tx *bolt.Tx) error {
		n := 0
		for err := range tx.Check() { // drain it: the check's goroutine waits on every send
			if n++; n <= maxProblems {
				out = append(out, oneLine(err))
			}
		}
		if n > maxProblems {
			out = append(out, fmt.Sprintf("and %d more problems", n-maxProblems))
		}
		return nil
	})
	return out, err
}

// oneLine is a panic value or error as one line of text.
func oneLine(v any) string {
	return strings.Join(strings.Fields(fmt.Sprint(v)), " ")
}

// freelistOnDisk reports whether the bbolt file at path keeps its free list on disk, as read
// from its newest valid meta page; true when there is no file yet. Anything it cannot make out
// is false: the caller then reads every page first, the cautious way.
//
// bbolt exports nothing that says so before opening the file for writing, which is when it
// would rebuild a missing free list; the meta page's layout is fixed by the file format
// (bbolt's internal/common/meta.go): after the 16-byte page header, magic, version, page size
// and flags (4 bytes each), the root bucket (8 + 8), the free list's page id (8), the high
// water mark (8), the transaction id (8) and an FNV-1a checksum of the 56 bytes before it.
func freelistOnDisk(path string) (bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return true, nil
	} else if err != nil {
		return false, fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	const (
		header    = 16
		magic     = 0xED0CDAED
		noFreelst = ^uint64(0)
	)
	meta := func(off int64) (freelist, txid uint64, pageSize uint32, ok bool) {
		var b [header + 64]byte
		if _, err := f.ReadAt(b[:], off); err != nil {
			return 0, 0, 0, false
		}
		m := b[header:]
		h := fnv.New64a()
		h.Write(m[:56])
		if binary.LittleEndian.Uint32(m) != magic || binary.LittleEndian.Uint64(m[56:]) != h.Sum64() {
			return 0, 0, 0, false
		}
		return binary.LittleEndian.Uint64(m[32:]), binary.LittleEndian.Uint64(m[48:]), binary.LittleEndian.Uint32(m[8:]), true
	}
	fl0, tx0, pageSize, ok0 := meta(0)
	if !ok0 {
		pageSize = uint32(os.Getpagesize())
	}
	fl1, tx1, _, ok1 := meta(int64(pageSize))
	switch {
	case ok0 && (!ok1 || tx0 > tx1):
		return fl0 != noFreelst, nil
	case ok1:
		return fl1 != noFreelst, nil
	}
	return false, nil
}
