package main

import (
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"crewmail/digest"
	"crewmail/internal/mailtest"
	"crewmail/lists"
	"crewmail/store/postgres"
	"crewmail/store/storetest"
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

	// The day of a crew: 20 posts in 5 conversations (storetest.FillCrewDays).
	fill := time.Now()
	if err := storetest.FillCrewDays(st, testDomain, n, day); err != nil {
		b.Fatal(err)
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
