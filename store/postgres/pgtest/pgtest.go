// Package pgtest gives tests a PostgreSQL database of their own: a fresh database on the
// server CREWMAIL_TEST_POSTGRES names (scripts/pg-cluster starts one), dropped when the test
// ends. Without that variable the test is skipped with one line, so `go test ./...` needs
// nothing but Go.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// Env names the server the tests use: a DSN whose user may create databases.
const Env = "CREWMAIL_TEST_POSTGRES"

// Need skips t when Env is unset, with one line, and returns the server's DSN otherwise.
func Need(t testing.TB) string {
	t.Helper()
	admin := os.Getenv(Env)
	if admin == "" {
		t.Skip(Env + " is unset: no PostgreSQL to test on (scripts/pg-cluster run -- go test ...)")
	}
	return admin
}

// DSN creates an empty database for t and returns its DSN; the database is dropped when t
// ends. t is skipped when Env is unset.
func DSN(t testing.TB) string {
	t.Helper()
	admin := Need(t)
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "crewmail_test_" + hex.EncodeToString(b[:])
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("connect to %s: %v", Env, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("connect to drop the test database: %v", err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop the test database: %v", err)
		}
	})
	return WithDatabase(admin, name)
}

// WithDatabase is dsn naming database name instead of its own.
func WithDatabase(dsn, name string) string {
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		u.Path = "/" + name
		return u.String()
	}
	return strings.TrimSpace(dsn) + " dbname=" + name
}
