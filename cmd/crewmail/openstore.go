package main

import (
	"fmt"

	"crewmail/config"
	"crewmail/store"
	"crewmail/store/postgres"
)

// openStore opens the backend the configuration's [store] names: the bbolt file in the data
// folder, or the PostgreSQL database at the DSN.
func openStore(cfg *config.Config) (store.Backend, error) {
	// Each Open returns its own pointer type: a nil one must not become a non-nil Backend.
	if cfg.Store.Backend == "postgres" {
		db, err := postgres.Open(cfg.Store.DSN)
		if err != nil {
			return nil, err
		}
		return db, nil
	}
	st, err := store.Open(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	return st, nil
}

// shared says whether the configured backend is shared by several processes, which then talk
// to it directly rather than through a server's control socket.
func shared(cfg *config.Config) bool { return cfg.Store.Backend == "postgres" }

// errNotAFile is the answer of the commands that only a database file has on a backend that
// is not one: a usage error (exit status 2), with what to use instead.
func errNotAFile(command string) error {
	switch command {
	case "backup":
		return usageError("crewmail backup copies the bbolt file; on PostgreSQL, back up the database with pg_dump")
	default:
		return usageError(fmt.Sprintf("crewmail %s checks the bbolt file; PostgreSQL checks its own pages (pg_amcheck)", command))
	}
}
