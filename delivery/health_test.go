package delivery_test

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"crewmail/delivery"
	"crewmail/store"
)

// TestHealthSaysWhenTheOutboxIsStuck: a delivery due and not attempted (no worker runs) is
// fine for StuckAfter; a moment longer and Health says which delivery waits, as /healthz
// answers; the gauges show the waiting row and how overdue it is.
func TestHealthSaysWhenTheOutboxIsStuck(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	q, clk := newQueue(t, st, composeMessage, nil, delivery.Config{})
	gauges := func() map[string]float64 {
		reg := prometheus.NewRegistry()
		reg.MustRegister(q.Gauges()...)
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]float64{}
		for _, mf := range mfs {
			out[mf.GetName()] = mf.GetMetric()[0].GetGauge().GetValue()
		}
		return out
	}
	if err := q.Health(); err != nil {
		t.Errorf("an empty outbox: %v", err)
	}
	if g := gauges(); g["crewmail_outbox_deliveries"] != 0 || g["crewmail_outbox_overdue_seconds"] != 0 {
		t.Errorf("gauges of an empty outbox: %v", g)
	}
	enqueue(t, st, store.Delivery{List: "crew", Seq: 1, From: "crew-bounces@crew.test", To: "alice@example.test", Created: t0})

	clk.Advance(delivery.StuckAfter)
	if err := q.Health(); err != nil {
		t.Errorf("a delivery due %s ago: %v", delivery.StuckAfter, err)
	}
	clk.Advance(time.Second)
	want := "outbox stuck: a delivery due at " + t0.Format(time.RFC3339) + " has not been attempted"
	if err := q.Health(); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("a delivery due %s ago: %v, want %q", delivery.StuckAfter+time.Second, err, want)
	}
	if g := gauges(); g["crewmail_outbox_deliveries"] != 1 || g["crewmail_outbox_overdue_seconds"] != (delivery.StuckAfter+time.Second).Seconds() {
		t.Errorf("gauges with one delivery overdue: %v", g)
	}
}
