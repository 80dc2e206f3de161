package store

import (
	"errors"
	"fmt"
	"sync"
	"testing"
)

// boltFaults make the bbolt file fail as a failing disk or an older bug would (see Faults).
type boltFaults struct{ s *Store }

// Faults is how a test makes s fail: the one place tests inject failures, so that no package
// carries a test hook of its own.
func (s *Store) Faults() Faults { return boltFaults{s} }

// faults are the failures armed on a store.
type faults struct {
	mu      sync.Mutex
	commits int   // how many more commits fail (FailCommits)
	err     error // with this error
}

// commitErr is the error the transaction being committed fails with, nil when none is armed.
func (f *faults) commitErr() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.commits == 0 {
		return nil
	}
	f.commits--
	return f.err
}

func onlyInTests(what string) error {
	if !testing.Testing() {
		return fmt.Errorf("store: %s runs only in tests", what)
	}
	return nil
}

// FailCommits makes the next n commits fail with err (n = 0 disarms it): the functions of a
// transaction have all run, and then it is rolled back as when the disk refuses the write, so
// every Update sharing it (group commit) returns err and nothing of them is on disk.
func (f boltFaults) FailCommits(n int, err error) error {
	if err := onlyInTests("FailCommits"); err != nil {
		return err
	}
	if n > 0 && err == nil {
		return errors.New("store: FailCommits needs the error the commits fail with")
	}
	f.s.faults.mu.Lock()
	defer f.s.faults.mu.Unlock()
	f.s.faults.commits, f.s.faults.err = n, err
	return nil
}

// DamageCursor overwrites the digest cursor of addr on list with bytes no reader accepts.
func (f boltFaults) DamageCursor(list, addr string) error {
	if err := onlyInTests("DamageCursor"); err != nil {
		return err
	}
	return f.s.Update(func(tx Tx) error {
		b := tx.(*boltTx).listBucket(list)
		if b == nil {
			return fmt.Errorf("list %s: %w", list, ErrNotFound)
		}
		return b.Bucket(subCursors).Put([]byte(addr), []byte("{\"seq\":"))
	})
}
