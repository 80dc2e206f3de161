package main

import (
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"crewmail/digest"
	"crewmail/internal/mailtest"
	"crewmail/lists"
	"crewmail/store"
	"crewmail/store/postgres"
	"crewmail/templates"
)

// BenchmarkDailyDigestsOnPostgres is digest's BenchmarkDailyDigests on PostgreSQL: many lists
// of 8 daily members with a day of 20 posts each (CREWMAIL_BENCH_LISTS, default 200), then one
// round of daily digests, timed: every post read, every digest composed, one outbox row per
// member and the cursors moved, a commit per list. Needs CREWMAIL_TEST_POSTGRES (skipped
// without); run with -benchtime 1x:
//
//	scripts/pg-cluster run -- env CREWMAIL_BENCH_LISTS=10000 go test -run '^$' -bench DailyDigestsOnPostgres -benchtime 1x -timeout 1h ./cmd/crewmail
func BenchmarkDailyDigestsOnPostgres(b *testing.B) {
	n := 200
	if v := os.Getenv("CREWMAIL_BENCH_LISTS"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	st, err := postgres.Open(nodesDatabase(b))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	tpl, err := templates.New("")
	if err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	svc := lists.New(st, tpl, lists.Config{Hostname: testDomain}, log)
	day := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	svc.Now = func() time.Time { return day }

	// The same day of a crew as digest's benchmark: 20 posts in 5 conversations.
	body := strings.Repeat("We should sow the beans after the last frost, and keep the seedlings under glass until then.\r\n", 6)
	fill := time.Now()
	const batch = 50
	for first := 0; first < n; first += batch {
		err := st.Update(func(tx store.Tx) error {
			for i := first; i < min(first+batch, n); i++ {
				addr := fmt.Sprintf("crew%d@%s", i, testDomain)
				if err := tx.CreateList(store.List{Address: addr, Name: fmt.Sprintf("Crew %d", i), Join: "approve", Post: "anyone"}); err != nil {
					return err
				}
				for m := range 8 {
					if _, err := tx.AddMember(addr, store.Member{Address: fmt.Sprintf("m%d@example.test", m), Mode: "daily", Added: day}); err != nil {
						return err
					}
				}
				for p := range 20 {
					thread := uint64(p%5 + 1)
					subject := fmt.Sprintf("Topic %d", thread)
					refs := ""
					if p >= 5 {
						subject = "Re: " + subject
						refs = fmt.Sprintf("In-Reply-To: <p%d.%d@example.test>\r\n", p-5, i)
					}
					raw := fmt.Appendf(nil, "From: Member %d <m%d@example.test>\r\nSubject: %s\r\nDate: Tue, 24 Nov 2026 %02d:00:00 +0000\r\nMessage-ID: <p%d.%d@example.test>\r\n%sContent-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n> quoted from before\r\n> and more\r\n\r\n-- \r\nMember %d\r\n",
						p%8, p%8, subject, p, p, i, refs, body, p%8)
					post := store.Post{Received: day.Add(time.Duration(p) * time.Hour), MessageID: fmt.Sprintf("p%d.%d@example.test", p, i), From: fmt.Sprintf("m%d@example.test", p%8), Subject: subject, Thread: thread, Verified: "dkim"}
					if _, err := tx.AppendPost(addr, post, raw); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("%d lists filled in %.1f s", n, time.Since(fill).Seconds())
	r := &digest.Renderer{Templates: tpl, Hostname: testDomain}
	sched := digest.NewScheduler(st, r, svc, digest.Schedule{DailyAt: "08:00", WeeklyOn: time.Monday, Zone: time.UTC}, log)
	sched.Now = func() time.Time { return day.Add(32 * time.Hour) } // Wednesday 08:00
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)       // a new peak RSS (Linux)
	b.ResetTimer()
	start := time.Now()
	sent, err := sched.SendDue("", false)
	if err != nil {
		b.Fatal(err)
	}
	secs := time.Since(start).Seconds()
	b.StopTimer()
	if sent.Members != 8*n || sent.Messages != 20*n {
		b.Fatalf("sent %+v, want %d members and %d messages", sent, 8*n, 20*n)
	}
	b.ReportMetric(secs, "s/round")
	b.ReportMetric(float64(n)/secs, "lists/s")
	b.ReportMetric(float64(mailtest.ProcStatus("VmHWM"))/(1<<20), "peak-RSS-MiB")
	b.Logf("%d lists × 8 members × 20 posts on PostgreSQL: %d digests composed, %d enqueued in %.1f s, peak RSS %d MiB",
		n, sent.Digests, sent.Members, secs, mailtest.ProcStatus("VmHWM")>>20)
}
