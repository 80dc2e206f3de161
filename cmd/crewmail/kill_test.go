package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"crewmail/internal/mailtest"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// binary builds the crewmail command once per test run.
func binary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "crewmail-bin")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "crewmail")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = err
			t.Logf("go build: %s", out)
		}
	})
	if binErr != nil {
		t.Fatalf("build crewmail: %v", binErr)
	}
	return binPath
}

// process is crewmail running as its own process, as an operator runs it.
type process struct {
	cmd      *exec.Cmd
	smtpAddr string
	exited   chan error
}

// startProcess runs "crewmail serve" and waits for its "crewmail started" log line.
func startProcess(t *testing.T, cfgPath string) *process {
	t.Helper()
	cmd := exec.Command(binary(t), "serve", "-config", cfgPath, "-log-json")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, exited: make(chan error, 1)}
	started := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var line struct {
				Msg  string `json:"msg"`
				SMTP string `json:"smtp"`
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "crewmail started" {
				started <- line.SMTP
			}
			t.Log(sc.Text())
		}
		p.exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
	})
	select {
	case p.smtpAddr = <-started:
	case err := <-p.exited:
		t.Fatalf("crewmail exited before starting: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("crewmail did not start")
	}
	return p
}

func (p *process) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.exited
}

// TestKillBetweenAcceptAndDelivery: a post acknowledged with 250 survives SIGKILL while its
// deliveries are in flight, and goes out when the server starts again.
func TestKillBetweenAcceptAndDelivery(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	dir := t.TempDir()
	stuck := mailtest.NewSink(t)
	release := stuck.Hold()
	defer release()
	cfg := testConfig(t, dir, stuck.Addr, "")
	p := startProcess(t, cfg)

	for _, args := range [][]string{{"list", "create", crew}, {"member", "add", crew, "alice@example.test", "bob@example.test"}} {
		if out, errOut, code := runCLI(t, cfg, args...); code != 0 {
			t.Fatalf("%v: %s%s", args, out, errOut)
		}
	}
	msg := post("alice@example.test", "Survives", "survive@example.test", "still here\r\n")
	if err := send(t, p.smtpAddr, "alice@example.test", []string{crew}, msg); err != nil {
		t.Fatalf("post refused: %v", err)
	}
	// Both deliveries reach the smarthost, which holds them: now they are in flight.
	for deadline := time.Now().Add(60 * time.Second); stuck.Held() < 2; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("deliveries never reached the smarthost (%d held)", stuck.Held())
		}
	}
	p.kill(t)

	// Start again with a working smarthost.
	sink := mailtest.NewSink(t)
	cfg = testConfig(t, dir, sink.Addr, "")
	p = startProcess(t, cfg)
	got := sink.Wait(t, 2)
	var rcpts []string
	for _, m := range got {
		rcpts = append(rcpts, m.To...)
		if !strings.HasSuffix(string(m.Data), string(msg)) {
			t.Errorf("copy to %v is not the post:\n%s", m.To, m.Data)
		}
	}
	slices.Sort(rcpts)
	if want := []string{"alice@example.test", "bob@example.test"}; !slices.Equal(rcpts, want) {
		t.Errorf("after the restart delivered to %v, want %v", rcpts, want)
	}
	out, errOut, code := runCLI(t, cfg, "archive", "ls", crew, "-json")
	if code != 0 || strings.Count(out, "survive@example.test") != 1 || strings.Count(out, "\n") != 1 {
		t.Errorf("archive after the kill (exit %d): %s%s", code, out, errOut)
	}

	// SIGTERM stops it cleanly, with exit status 0.
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-p.exited; err != nil {
		t.Errorf("after SIGTERM: %v", err)
	}
	// With the server stopped, admin commands open the database directly.
	if out, errOut, code := runCLI(t, cfg, "member", "ls", crew); code != 0 || !strings.Contains(out, "bob@example.test") {
		t.Errorf("member ls without a server: exit %d: %s%s", code, out, errOut)
	}
}
