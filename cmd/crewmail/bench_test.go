package main

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/emersion/go-smtp"

	"crewmail/internal/mailtest"
	"crewmail/store/postgres/pgtest"
)

// BenchmarkPost measures posts accepted per second over SMTP, a new connection per post as
// smtp-source makes them, 16 sessions at once, into a list of 8 members. Delivery runs too
// (to an in-process sink) when the members are in each mode. With CREWMAIL_TEST_POSTGRES set,
// the same on PostgreSQL (store=postgres).
func BenchmarkPost(b *testing.B) {
	stores := []string{"bbolt"}
	if os.Getenv(pgtest.Env) != "" {
		stores = append(stores, "postgres")
	}
	for _, st := range stores {
		for _, mode := range []string{"daily", "each"} {
			b.Run("store="+st+"/members="+mode, func(b *testing.B) { benchmarkPost(b, st, mode) })
		}
	}
}

func benchmarkPost(b *testing.B, st, mode string) {
	sink := mailtest.NewSink(b)
	dir := b.TempDir()
	var more string
	if st == "postgres" {
		more = fmt.Sprintf("[store]\nbackend = \"postgres\"\ndsn = %q\n", pgtest.DSN(b))
	}
	ts := startBenchServer(b, dir, sink.Addr, more)
	ts.mustCLIb(b, "list", "create", crew, "-post", "members") // unsigned posts: members, not verified
	for i := range 8 {
		ts.mustCLIb(b, "member", "add", crew, fmt.Sprintf("m%d@example.test", i), "-mode", mode)
	}
	body := bytes.Repeat([]byte(strings.Repeat("x", 78)+"\r\n"), 50)
	var n atomic.Int64
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			msg := append([]byte(fmt.Sprintf("From: m1@example.test\r\nTo: %s\r\nSubject: load %d\r\nMessage-ID: <%d@bench.test>\r\n\r\n", crew, i, i)), body...)
			c, err := smtp.Dial(ts.SMTPAddr)
			if err != nil {
				b.Fatal(err)
			}
			if err := c.SendMail("m1@example.test", []string{crew}, bytes.NewReader(msg)); err != nil {
				b.Fatal(err)
			}
			c.Quit()
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "posts/s")
}
