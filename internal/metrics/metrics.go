// Package metrics owns what crewmail counts for its operator: the Prometheus counters and
// gauges served at /metrics on the HTTP listener. Packages count what they do here; nothing
// here decides anything.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Registry holds every crewmail metric and the Go runtime's.
var Registry = prometheus.NewRegistry()

var (
	// Messages counts what became of each SMTP transaction: "accepted", "held", "duplicate",
	// "command", or the refusal's reply code ("550 5.7.1").
	Messages = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "crewmail_smtp_messages_total",
		Help: "SMTP transactions by outcome: accepted, held, duplicate, command, or the refusal's reply code.",
	}, []string{"outcome"})

	// Verifications counts authentication outcomes: "dkim", "spf" (DMARC-aligned passes),
	// "fail", "temperror".
	Verifications = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "crewmail_verifications_total",
		Help: "Verification of inbound mail: dkim or spf (aligned pass), fail, temperror.",
	}, []string{"result"})

	// Deliveries counts delivery attempts: "delivered", "deferred", "failed".
	Deliveries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "crewmail_deliveries_total",
		Help: "Delivery attempts by outcome: delivered, deferred (retried later), failed (for good).",
	}, []string{"outcome"})

	// DeliveryReplies counts failed delivery attempts by the step they ended at and the class
	// of the server's reply ("4xx", "5xx", "none" when there was no reply).
	DeliveryReplies = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "crewmail_delivery_failures_total",
		Help: "Failed delivery attempts by step (connect, tls, ehlo, mail, rcpt, data, local) and reply class.",
	}, []string{"step", "class"})

	// DestinationsHeld is how many destinations are on hold after asking us to slow down.
	DestinationsHeld = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "crewmail_delivery_destinations_held",
		Help: "Destinations (MX host sets, the smarthost) on hold after a 421, 4.7.28 or refused connection.",
	})

	// Digests counts digests sent (one per distinct digest) and the members they went to.
	Digests = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "crewmail_digests_total", Help: "Distinct digests composed and sent.",
	})
	DigestDeliveries = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "crewmail_digest_members_total", Help: "Digests put in the outbox, one per member.",
	})

	// Bounces counts mail to bounce addresses and failed deliveries by what they report.
	Bounces = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "crewmail_bounces_total",
		Help: "Bounces by kind: failed, delayed, delivered, policy, autoreply, unknown.",
	}, []string{"kind"})

	// TLSFailures counts outbound TLS failures that MTA-STS reveals, by recipient domain and
	// RFC 8460 result type (a TLS-RPT summary): "certificate-host-mismatch",
	// "sts-policy-fetch-error", "starttls-not-supported", ...
	TLSFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "crewmail_tls_failures_total",
		Help: "Outbound TLS failures under MTA-STS policies, by recipient domain and RFC 8460 result type.",
	}, []string{"domain", "result"})

	// IMAPSessions is the number of open IMAP sessions; IMAPLogins counts logins by result.
	IMAPSessions = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "crewmail_imap_sessions", Help: "Open IMAP sessions.",
	})
	IMAPLogins = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "crewmail_imap_logins_total", Help: "IMAP logins by result: ok, failed, throttled.",
	}, []string{"result"})
)

func init() {
	Registry.MustRegister(Messages, Verifications, Deliveries, DeliveryReplies, DestinationsHeld, Digests, DigestDeliveries, Bounces, TLSFailures, IMAPSessions, IMAPLogins,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
}
