package delivery

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"crewmail/internal/mailaddr"
	"crewmail/store"
)

// StuckAfter is how long a delivery may stay due without being attempted before Health says
// the outbox is stuck. Workers take due rows within seconds; a quarter of an hour means every
// one of them hangs on a server that does not answer, or they stopped.
const StuckAfter = 15 * time.Minute

// Health says whether the outbox is being worked: nil when it is, else why not (the store
// cannot be read, or a delivery due over StuckAfter ago has not been attempted). It is the
// answer of the server's health check.
func (q *Queue) Health() error {
	due, waiting, err := q.nextDue()
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if waiting && q.Now().Sub(due) > StuckAfter {
		return fmt.Errorf("outbox stuck: a delivery due at %s has not been attempted", due.UTC().Format(time.RFC3339))
	}
	return nil
}

// Gauges are the outbox's metrics, read from the store when they are scraped: how many
// deliveries wait, and how long the earliest due one has waited past its due time. They belong
// to one Queue (one store), so they are registered where its server serves /metrics, not in
// the process-wide registry.
func (q *Queue) Gauges() []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "crewmail_outbox_deliveries", Help: "Deliveries waiting in the outbox."}, func() float64 {
			n := 0
			if err := q.st.View(func(tx store.Tx) error {
				var err error
				n, err = tx.OutboxSize()
				return err
			}); err != nil {
				return math.NaN() // unknown, not empty
			}
			return float64(n)
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "crewmail_outbox_overdue_seconds", Help: "How long the earliest due delivery has waited past its due time (0: none is overdue)."}, func() float64 {
			due, ok, err := q.nextDue()
			if err != nil {
				return math.NaN() // unknown, not none overdue
			}
			if d := q.Now().Sub(due); ok && d > 0 {
				return d.Seconds()
			}
			return 0
		}),
		deferredCollector{q},
	}
}

// deferredDesc: the deliveries waiting after a failure, by recipient domain. A destination
// that refuses or throttles crewmail shows here until its mail goes through.
var deferredDesc = prometheus.NewDesc("crewmail_outbox_deferred_deliveries",
	"Deliveries waiting in the outbox for another attempt after a temporary failure, by recipient domain.", []string{"domain"}, nil)

// deferredCollector reads the outbox rows at each scrape.
type deferredCollector struct{ q *Queue }

func (c deferredCollector) Describe(ch chan<- *prometheus.Desc) { ch <- deferredDesc }

func (c deferredCollector) Collect(ch chan<- prometheus.Metric) {
	byDomain := map[string]int{}
	now := c.q.Now()
	err := c.q.st.View(func(tx store.Tx) error {
		return tx.Outbox(func(d store.Delivery) error {
			if d.Attempts > 0 && !d.Leased && d.Due.After(now) {
				_, domain, _ := mailaddr.Split(d.To)
				byDomain[strings.ToLower(domain)]++
			}
			return nil
		})
	})
	if err != nil {
		ch <- prometheus.NewInvalidMetric(deferredDesc, err)
		return
	}
	for domain, n := range byDomain {
		ch <- prometheus.MustNewConstMetric(deferredDesc, prometheus.GaugeValue, float64(n), domain)
	}
}

// nextDue is when the earliest waiting delivery is due; waiting is false when none waits.
func (q *Queue) nextDue() (due time.Time, waiting bool, err error) {
	err = q.st.View(func(tx store.Tx) error {
		var err error
		due, waiting, err = tx.NextDue()
		return err
	})
	return due, waiting, err
}
