package main

import (
	"bytes"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/emersion/go-smtp"

	"crewmail/internal/mailtest"
)

// BenchmarkPost measures posts accepted per second over SMTP, a new connection per post as
// smtp-source makes them, 16 sessions at once, into a list of 8 members. Delivery runs too
// (to an in-process sink) when the members are in each mode.
func BenchmarkPost(b *testing.B) {
	for _, mode := range []string{"daily", "each"} {
		b.Run("members="+mode, func(b *testing.B) {
			sink := mailtest.NewSink(b)
			dir := b.TempDir()
			ts := startBenchServer(b, dir, sink.Addr)
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
		})
	}
}
