package postgres

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"crewmail/store"
)

// Faults is how a test makes the database fail (store.Faults); outside a test binary every
// method refuses.
func (db *DB) Faults() store.Faults { return dbFaults{db} }

type dbFaults struct{ db *DB }

type faults struct {
	mu      sync.Mutex
	commits int
	err     error
}

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
		return fmt.Errorf("postgres: %s runs only in tests", what)
	}
	return nil
}

// FailCommits makes the next n transactions roll back with err after their functions ran.
func (f dbFaults) FailCommits(n int, err error) error {
	if err := onlyInTests("FailCommits"); err != nil {
		return err
	}
	if n > 0 && err == nil {
		return errors.New("postgres: FailCommits needs the error the commits fail with")
	}
	f.db.faults.mu.Lock()
	defer f.db.faults.mu.Unlock()
	f.db.faults.commits, f.db.faults.err = n, err
	return nil
}

// DamageCursor overwrites the digest cursor of addr on list with bytes no reader accepts.
func (f dbFaults) DamageCursor(list, addr string) error {
	if err := onlyInTests("DamageCursor"); err != nil {
		return err
	}
	return f.db.Update(func(t store.Tx) error {
		tag, err := t.(*tx).exec("UPDATE cursors SET data = $3 WHERE list = $1 AND address = $2", list, addr, []byte(`{"seq":`))
		if err == nil && tag.RowsAffected() == 0 {
			return fmt.Errorf("cursor of %s on %s: %w", addr, list, store.ErrNotFound)
		}
		return err
	})
}
