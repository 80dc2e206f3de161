package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestHealthURL(t *testing.T) {
	for _, c := range []struct{ listen, want string }{
		{"0.0.0.0:8025", "http://127.0.0.1:8025/healthz"},
		{":8025", "http://127.0.0.1:8025/healthz"},
		{"[::]:8025", "http://127.0.0.1:8025/healthz"},
		{"127.0.0.1:8025", "http://127.0.0.1:8025/healthz"},
		{"[::1]:9000", "http://[::1]:9000/healthz"},
		{"10.0.0.5:80", "http://10.0.0.5:80/healthz"},
	} {
		got, err := healthURL(c.listen)
		if err != nil || got != c.want {
			t.Errorf("healthURL(%q) = %q, %v; want %q", c.listen, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "8025", "localhost"} {
		if got, err := healthURL(bad); err == nil {
			t.Errorf("healthURL(%q) = %q, want an error", bad, got)
		}
	}
}

// writeConfig writes a crewmail config whose HTTP listener is addr.
func writeConfig(t *testing.T, addr string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "crewmail.toml")
	if err := os.WriteFile(p, fmt.Appendf(nil, "[http]\nlisten = %q\n", addr), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCheck(t *testing.T) {
	healthy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintln(w, "ok")
	}))
	defer healthy.Close()
	sick := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "store: database not open", http.StatusServiceUnavailable)
	}))
	defer sick.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()

	if err := check(writeConfig(t, healthy.Listener.Addr().String()), 5*time.Second); err != nil {
		t.Errorf("healthy server: %v", err)
	}
	if err := check(writeConfig(t, sick.Listener.Addr().String()), 5*time.Second); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("server answering 503: err = %v, want one naming the 503", err)
	}
	if err := check(writeConfig(t, closed), 5*time.Second); err == nil {
		t.Error("no server: no error")
	}
	if err := check(writeConfig(t, ""), 5*time.Second); err == nil {
		t.Error("HTTP off: no error")
	}
}
