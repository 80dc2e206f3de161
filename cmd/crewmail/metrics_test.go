package main

import (
	"bufio"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"crewmail/internal/mailtest"
)

// scrape reads /metrics into name{labels} → value.
func scrape(t *testing.T, ts *testServer) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + ts.HTTPAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %d", resp.StatusCode)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

// TestMetricsMove: after a post and its deliveries, the counters an operator watches have
// moved; the outbox gauges are there.
func TestMetricsMove(t *testing.T) {
	// Counters are process-wide and other tests run alongside: compare before and after.
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink, "alice@example.test", "bob@example.test")
	before := scrape(t, ts)
	if err := send(t, ts.SMTPAddr, "alice@example.test", []string{crew}, post("alice@example.test", "Counted", "counted@example.test", "x\r\n")); err != nil {
		t.Fatal(err)
	}
	if err := send(t, ts.SMTPAddr, "carol@example.test", []string{crew}, post("carol@example.test", "Stranger", "stranger@example.test", "x\r\n")); smtpCode(err) != "550 5.7.1" {
		t.Fatalf("non-member: %v", err)
	}
	sink.Wait(t, 2)
	settle(t, ts)
	after := scrape(t, ts)
	for _, m := range []struct {
		name string
		min  float64
	}{
		{`crewmail_smtp_messages_total{outcome="accepted"}`, 1},
		{`crewmail_smtp_messages_total{outcome="550 5.7.1"}`, 1},
		{`crewmail_verifications_total{result="spf"}`, 1},
		{`crewmail_deliveries_total{outcome="delivered"}`, 2},
	} {
		if d := after[m.name] - before[m.name]; d < m.min {
			t.Errorf("%s moved by %g, want at least %g", m.name, d, m.min)
		}
	}
	for _, g := range []string{"crewmail_outbox_deliveries", "crewmail_outbox_overdue_seconds", "go_goroutines"} {
		if _, ok := after[g]; !ok {
			t.Errorf("%s missing from /metrics", g)
		}
	}
}

// TestHealthzFailsWhenOutboxStuck: the smarthost hangs, every worker waits on it, and mail due
// long ago is not attempted: /healthz says so; when the smarthost answers again it recovers.
func TestHealthzFailsWhenOutboxStuck(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	release := sink.Hold()
	ts := newCrew(t, sink, "alice@example.test")
	// More deliveries than the queue takes at once (8 workers, hanging at the smarthost, and
	// up to 16 claimed rows waiting for them): the rest stay due and are not attempted.
	const posts = 30
	for i := range posts {
		id := "stuck" + strconv.Itoa(i) + "@example.test"
		if err := send(t, ts.SMTPAddr, "alice@example.test", []string{crew}, post("alice@example.test", "Stuck", id, "x\r\n")); err != nil {
			t.Fatal(err)
		}
	}
	health := func() (int, string) {
		resp, err := http.Get("http://" + ts.HTTPAddr + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := health(); code != 200 {
		t.Fatalf("healthz before anything is late: %d %s", code, body)
	}
	deadline := time.Now().Add(30 * time.Second)
	for sink.Held() < 8 && time.Now().Before(deadline) { // wait until the workers are all busy
		time.Sleep(5 * time.Millisecond)
	}
	ts.clock.Advance(20 * time.Minute)
	if code, body := health(); code != 503 || !strings.Contains(body, "outbox stuck") {
		t.Errorf("healthz with the outbox stuck: %d %s", code, body)
	}
	release()
	sink.Wait(t, posts)
	settle(t, ts)
	if code, body := health(); code != 200 {
		t.Errorf("healthz after recovery: %d %s", code, body)
	}
}
