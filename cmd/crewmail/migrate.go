package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"crewmail/config"
	"crewmail/store"
	"crewmail/store/postgres"
)

// cmdMigrate copies every record of one backend into another (store.Copy): from the
// configured [store], or -from, to -to. The servers must be stopped: a bbolt file cannot be
// opened while one runs, and on PostgreSQL what nodes wrote after the copy's snapshot would
// not be copied.
func cmdMigrate(c *cmd) error {
	c.params = "-to postgres://…|bbolt:FILE [-from postgres://…|bbolt:FILE]"
	c.help = "Copies the whole database, with the servers stopped, into an empty one of the other backend, keeping every ID and the server's secret (tokens stay valid), then checks the copy: the count of each kind of record and the SHA-256 of every archived message. -from defaults to the configured [store]. Afterwards, point [store] at the copy."
	to := c.flag.String("to", "", "where to copy: a PostgreSQL DSN (postgres://…) or bbolt:FILE (a crewmail.db file, made if missing)")
	from := c.flag.String("from", "", "what to copy (default: the configured [store])")
	if _, err := c.parse(0, 0); err != nil {
		return err
	}
	if *to == "" {
		return c.usageError()
	}
	cfg, err := c.config()
	if err != nil {
		return err
	}
	if *from == "" {
		*from = configured(cfg)
	}
	if sameStore(*from, *to) {
		return usageError("crewmail migrate: -to names the database copied from; copy into another one")
	}
	src, err := openNamed(*from)
	if err != nil {
		return fmt.Errorf("open %s: %w", redact(*from), err)
	}
	defer src.Close()
	dst, err := openNamed(*to)
	if err != nil {
		return fmt.Errorf("open %s: %w", redact(*to), err)
	}
	closeDst := sync.OnceValue(dst.Close) // once: closing the bbolt file twice panics
	defer closeDst()
	var progress func(store.Summary)
	if isTerminal(c.stderr) {
		progress = progressReport(c.stderr)
	}
	sum, err := store.Copy(src.(store.Copier), dst.(store.Copier), progress)
	if progress != nil {
		fmt.Fprintln(c.stderr)
	}
	if errors.Is(err, store.ErrNotEmpty) {
		return fmt.Errorf("%s already holds records; crewmail migrate copies only into an empty database", redact(*to))
	}
	if err != nil {
		return err
	}
	if err := closeDst(); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "copied (%s) from %s to %s; checked: the counts and the SHA-256 of all %d archived messages match\n",
		sum, redact(*from), redact(*to), sum.Counts[store.RecPost])
	return nil
}

// progressReport rewrites one line on a terminal, at most a few times a second.
func progressReport(w io.Writer) func(store.Summary) {
	var last time.Time
	return func(s store.Summary) {
		if now := time.Now(); now.Sub(last) > 200*time.Millisecond {
			last = now
			fmt.Fprintf(w, "\rcopying: %d records, %d archived messages", total(s), s.Counts[store.RecPost])
		}
	}
}

func total(s store.Summary) int {
	n := 0
	for _, c := range s.Counts {
		n += c
	}
	return n
}

// configured names the backend of the configuration as -from and -to name them.
func configured(cfg *config.Config) string {
	if shared(cfg) {
		return cfg.Store.DSN
	}
	return "bbolt:" + filepath.Join(cfg.DataDir, store.FileName)
}

// openNamed opens the backend name says: bbolt:FILE or a PostgreSQL DSN.
func openNamed(name string) (store.Backend, error) {
	if file, ok := strings.CutPrefix(name, "bbolt:"); ok {
		if err := os.MkdirAll(filepath.Dir(file), 0o750); err != nil {
			return nil, err
		}
		st, err := store.OpenFile(file)
		if errors.Is(err, store.ErrLocked) {
			return nil, fmt.Errorf("%w: stop the server first", err)
		}
		if err != nil {
			return nil, err
		}
		return st, nil
	}
	db, err := postgres.Open(name)
	if err != nil {
		return nil, err
	}
	return db, nil
}

func sameStore(a, b string) bool {
	if fa, ok := strings.CutPrefix(a, "bbolt:"); ok {
		if fb, ok := strings.CutPrefix(b, "bbolt:"); ok {
			fa, _ = filepath.Abs(fa)
			fb, _ = filepath.Abs(fb)
			return fa == fb
		}
	}
	return a == b
}

// redact is a DSN as shown: without its password.
func redact(name string) string {
	if strings.HasPrefix(name, "bbolt:") {
		return name
	}
	if i, j := strings.Index(name, "://"), strings.LastIndex(name, "@"); i >= 0 && j > i {
		if k := strings.Index(name[i+3:j], ":"); k >= 0 {
			return name[:i+3+k] + ":…" + name[j:]
		}
	}
	return name
}
