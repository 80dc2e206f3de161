package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"crewmail/internal/mailtest"
)

// TestConnectionFloodLeavesServerUsable: a flood of unauthenticated IMAP connections against
// a server with few file descriptors (ulimit -n 80) gets BYE beyond imap.max_connections,
// while SMTP, /healthz and admin commands go on working, and SIGTERM stops the server.
func TestConnectionFloodLeavesServerUsable(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	dir := t.TempDir()
	cfgPath := testConfig(t, dir, mailtest.NewSink(t).Addr, "")
	text, _ := os.ReadFile(cfgPath)
	text = bytes.Replace(text, []byte("[imap]\n"), []byte("[imap]\nmax_connections = 40\nmax_connections_per_ip = 100\n"), 1)
	if err := os.WriteFile(cfgPath, text, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-c", `ulimit -n 80 && exec "$0" "$@"`, binary(t), "serve", "-config", cfgPath, "-log-json")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	type addrs struct{ SMTP, HTTP, IMAP string }
	started, exited := make(chan addrs, 1), make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var line struct {
				Msg string `json:"msg"`
				addrs
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "crewmail started" {
				started <- line.addrs
			}
			if !strings.Contains(sc.Text(), "too many open") { // one line per refused connection
				t.Log(sc.Text())
			}
		}
		exited <- cmd.Wait()
	}()
	var a addrs
	select {
	case a = <-started:
	case err := <-exited:
		t.Fatalf("crewmail exited before starting: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("crewmail did not start")
	}

	// greeting connects to addr and returns the first line; keep leaves the connection open.
	greeting := func(addr string, keep bool) string {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return "dial: " + err.Error()
		}
		if keep {
			t.Cleanup(func() { c.Close() })
		} else {
			defer c.Close()
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return "read: " + err.Error()
		}
		return line
	}
	ok, bye := 0, 0
	for range 70 {
		switch g := greeting(a.IMAP, true); {
		case strings.HasPrefix(g, "* OK"):
			ok++
		case strings.HasPrefix(g, "* BYE"):
			bye++
		default:
			t.Errorf("IMAP greeting under the flood: %q", g)
		}
	}
	if ok != 40 || bye != 30 {
		t.Errorf("70 IMAP connections: %d greeted, %d refused; want 40 and 30", ok, bye)
	}
	// With 40 IMAP connections held open, everything else still answers.
	if g := greeting(a.SMTP, false); !strings.HasPrefix(g, "220 ") {
		t.Errorf("SMTP under the flood: %q", g)
	}
	hc := http.Client{Timeout: 10 * time.Second}
	if resp, err := hc.Get("http://" + a.HTTP + "/healthz"); err != nil {
		t.Errorf("/healthz under the flood: %v", err)
	} else if resp.Body.Close(); resp.StatusCode != 200 {
		t.Errorf("/healthz under the flood: %s", resp.Status)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, binary(t), "list", "ls", "-config", cfgPath).CombinedOutput(); err != nil {
		t.Errorf("admin command under the flood: %v: %s", err, out)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("crewmail after SIGTERM: %v", err)
		}
	case <-time.After(3 * time.Minute):
		t.Error("crewmail did not stop after SIGTERM")
	}
}
