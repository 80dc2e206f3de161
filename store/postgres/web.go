package postgres

import (
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"crewmail/store"
)

// What the web reader keeps (store.Web), in the tables of migrations/003_web.sql.

func (t *tx) UseSignIn(id []byte, expires time.Time) error {
	tag, err := t.exec("INSERT INTO web_signins VALUES ($1, $2) ON CONFLICT DO NOTHING", id, expires.UTC())
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("sign-in link: %w", store.ErrExists)
	}
	return nil
}

func (t *tx) SignInUsed(id []byte) (bool, error) {
	var one int
	return t.row("SELECT 1 FROM web_signins WHERE id = $1", args(id), &one)
}

func (t *tx) SignInMailed(addr string) (time.Time, error) {
	var at time.Time
	found, err := t.row("SELECT at FROM web_signin_mails WHERE address = $1", args(addr), &at)
	if err != nil || !found {
		return time.Time{}, err
	}
	return at.UTC(), nil
}

func (t *tx) PutSignInMailed(addr string, at time.Time) error {
	_, err := t.exec("INSERT INTO web_signin_mails VALUES ($1, $2) ON CONFLICT (address) DO UPDATE SET at = excluded.at", addr, at.UTC())
	return err
}

func (t *tx) PutSession(s store.Session) error {
	if len(s.ID) == 0 || s.Address == "" {
		return fmt.Errorf("a session needs an ID and an address")
	}
	_, err := t.exec(`INSERT INTO web_sessions VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (id) DO UPDATE SET address = excluded.address, created = excluded.created, seen = excluded.seen,
			expires = excluded.expires, agent = excluded.agent`,
		s.ID, s.Address, s.Created.UTC(), s.Seen.UTC(), s.Expires.UTC(), s.Agent)
	return err
}

func scanSession(r pgx.Row) (store.Session, error) {
	var s store.Session
	err := r.Scan(&s.ID, &s.Address, &s.Created, &s.Seen, &s.Expires, &s.Agent)
	s.Created, s.Seen, s.Expires = s.Created.UTC(), s.Seen.UTC(), s.Expires.UTC()
	return s, err
}

const sessionColumns = "id, address, created, seen, expires, agent"

func (t *tx) Session(id []byte) (store.Session, error) {
	var s store.Session
	found, err := t.row("SELECT "+sessionColumns+" FROM web_sessions WHERE id = $1", args(id),
		&s.ID, &s.Address, &s.Created, &s.Seen, &s.Expires, &s.Agent)
	if err != nil {
		return s, err
	}
	if !found {
		return s, fmt.Errorf("session: %w", store.ErrNotFound)
	}
	s.Created, s.Seen, s.Expires = s.Created.UTC(), s.Seen.UTC(), s.Expires.UTC()
	return s, nil
}

func (t *tx) Sessions(addr string) ([]store.Session, error) {
	var out []store.Session
	err := t.rows("SELECT "+sessionColumns+" FROM web_sessions WHERE address = $1 ORDER BY seen DESC, id", args(addr), func(r pgx.Rows) error {
		s, err := scanSession(r)
		out = append(out, s)
		return err
	})
	return out, err
}

func (t *tx) DeleteSession(id []byte) error {
	_, err := t.exec("DELETE FROM web_sessions WHERE id = $1", id)
	return err
}

func (t *tx) Looked(addr, list string) (uint64, error) {
	if err := t.list(list); err != nil {
		return 0, err
	}
	var seq int64
	if _, err := t.row("SELECT seq FROM web_looked WHERE list = $1 AND address = $2", args(list, addr), &seq); err != nil {
		return 0, err
	}
	return uint64(seq), nil
}

func (t *tx) PutLooked(addr, list string, seq uint64) error {
	if err := t.list(list); err != nil {
		return err
	}
	_, err := t.exec("INSERT INTO web_looked VALUES ($1, $2, $3) ON CONFLICT (list, address) DO UPDATE SET seq = excluded.seq", list, addr, int64(seq))
	return err
}

func (t *tx) ExpireWeb(now time.Time) (int, error) {
	n := 0
	for _, q := range []string{
		"DELETE FROM web_signins WHERE expires < $1",
		"DELETE FROM web_sessions WHERE expires < $1",
		"DELETE FROM web_signin_mails WHERE at < $1::timestamptz - interval '1 day'",
	} {
		tag, err := t.exec(q, now.UTC())
		if err != nil {
			return n, err
		}
		n += int(tag.RowsAffected())
	}
	return n, nil
}
