package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"crewmail/store"
)

// The nodes tell each other what they commit over PostgreSQL's LISTEN/NOTIFY: a transaction
// that archived a post, changed flags or queued deliveries sends a notification on channel,
// which PostgreSQL delivers at the commit (and never for a transaction rolled back), to every
// node listening, in commit order.
const channel = "crewmail"

// note is a notification's payload.
type note struct {
	Node   string           `json:"n"`
	Kind   store.ChangeKind `json:"k"`
	List   string           `json:"l,omitempty"`
	Member uint64           `json:"m,omitempty"`
}

// announce sends changes on ptx, to be delivered when it commits.
func (db *DB) announce(ctx context.Context, ptx pgx.Tx, changes map[store.Change]bool) error {
	for c := range changes {
		payload, err := json.Marshal(note{Node: db.node, Kind: c.Kind, List: c.List, Member: c.Member})
		if err != nil {
			return err
		}
		if _, err := ptx.Exec(ctx, "SELECT pg_notify($1, $2)", channel, string(payload)); err != nil {
			return fmt.Errorf("postgres: %w", err)
		}
	}
	return nil
}

// Watch tells fn of the changes other nodes commit (store.Watcher), from a connection of its
// own that listens until Close and is made again when lost.
func (db *DB) Watch(fn func(store.Change)) {
	db.watchMu.Lock()
	db.watchers = append(db.watchers, fn)
	db.watchMu.Unlock()
	db.watchOnce.Do(func() {
		ready := make(chan struct{})
		db.listening.Go(func() { db.listen(ready) })
		select { // the first connection, so that what commits after Watch is seen
		case <-ready:
		case <-time.After(10 * time.Second):
		}
	})
}

func (db *DB) tell(c store.Change) {
	db.watchMu.Lock()
	watchers := db.watchers
	db.watchMu.Unlock()
	for _, fn := range watchers {
		fn(c)
	}
}

// listen receives the notifications until Close. After a lost connection it tells the
// watchers to look at everything, since what was committed meanwhile went unheard.
func (db *DB) listen(ready chan struct{}) {
	first := true
	for db.ctx.Err() == nil {
		err := db.listenOnce(func() {
			if first {
				close(ready)
				first = false
				return
			}
			for _, k := range []store.ChangeKind{store.ChangePost, store.ChangeFlags, store.ChangeOutbox} {
				db.tell(store.Change{Kind: k})
			}
		})
		if db.ctx.Err() != nil {
			return
		}
		_ = err // the connection is made again below; the server's log is not ours to fill
		select {
		case <-db.ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

func (db *DB) listenOnce(listening func()) error {
	conn, err := pgx.ConnectConfig(db.ctx, db.config.ConnConfig.Copy())
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(db.ctx, "LISTEN "+channel); err != nil {
		return err
	}
	listening()
	for {
		n, err := conn.WaitForNotification(db.ctx)
		if err != nil {
			return fmt.Errorf("postgres: listen: %w", err)
		}
		var x note
		if json.Unmarshal([]byte(n.Payload), &x) != nil || x.Node == db.node {
			continue // this node's own: it knew at its commit
		}
		db.tell(store.Change{Kind: x.Kind, List: x.List, Member: x.Member})
	}
}
