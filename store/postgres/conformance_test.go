package postgres_test

import (
	"testing"

	"crewmail/store"
	"crewmail/store/postgres"
	"crewmail/store/postgres/pgtest"
	"crewmail/store/storetest"
)

// open opens a fresh database of its own for t.
func open(t testing.TB) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(pgtest.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestConformance: PostgreSQL passes the suite every backend must.
func TestConformance(t *testing.T) {
	pgtest.Need(t)
	storetest.Run(t, func(t *testing.T) store.Backend { return open(t) })
}
