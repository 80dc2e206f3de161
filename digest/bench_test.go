package digest

import (
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"crewmail/internal/chore"
	"crewmail/internal/mailtest"
	"crewmail/lists"
	"crewmail/store"
	"crewmail/store/storetest"
	"crewmail/templates"
)

// BenchmarkDailyDigests composes and enqueues the daily digests of many lists of 8 members with
// 20 posts each: set CREWMAIL_BENCH_LISTS (default 200; the figure is 10000). Run with
// -benchtime 1x; it reports seconds for the round and the peak RSS of the round.
//
//	CREWMAIL_BENCH_LISTS=10000 go test -run '^$' -bench DailyDigests -benchtime 1x ./digest
func BenchmarkDailyDigests(b *testing.B) {
	n := 200
	if v := os.Getenv("CREWMAIL_BENCH_LISTS"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	st, err := store.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	tpl, err := templates.New("")
	if err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	svc := lists.New(st, tpl, lists.Config{Hostname: "lists.example.test"}, log)
	day := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	svc.Now = func() time.Time { return day }

	// The day of a crew: 20 posts in 5 conversations (storetest.FillCrewDays).
	if err := storetest.FillCrewDays(st, "lists.example.test", n, day); err != nil {
		b.Fatal(err)
	}
	r := &Renderer{Templates: tpl, Hostname: "lists.example.test"}
	sched := NewScheduler(st, r, svc, Schedule{DailyAt: "08:00", WeeklyOn: time.Monday, Zone: time.UTC}, log)
	sched.Now = func() time.Time { return day.Add(32 * time.Hour) } // Wednesday 08:00
	sched.Chores = chore.NewMappedPages(st, log)                    // as the server runs it
	runtime.GC()
	resetPeakRSS()
	stopSampling := make(chan struct{})
	peaks := map[string]int64{}
	sampled := make(chan struct{})
	go func() { // what the peak is made of: the heap (anon) or the database's mapped pages (file)
		defer close(sampled)
		for {
			for k, v := range rssParts() {
				peaks[k] = max(peaks[k], v)
			}
			select {
			case <-stopSampling:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	b.ResetTimer()
	start := time.Now()
	sent, err := sched.SendDue("", false)
	close(stopSampling)
	<-sampled
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
	b.ReportMetric(float64(peakRSS())/(1<<20), "peak-RSS-MiB")
	b.Logf("%d lists × 8 members × 20 posts: %d digests composed, %d enqueued in %.1f s, peak RSS %d MiB (sampled peaks: anon %d MiB, file %d MiB)",
		n, sent.Digests, sent.Members, secs, peakRSS()>>20, peaks["RssAnon"]>>20, peaks["RssFile"]>>20)
}

// resetPeakRSS starts a new peak-RSS measurement (Linux: clear_refs 5 resets VmHWM).
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// peakRSS is the process's peak resident set since the last reset, in bytes.
func peakRSS() int64 { return mailtest.ProcStatus("VmHWM") }

// rssParts are the anonymous and file-backed parts of the resident set now, in bytes.
func rssParts() map[string]int64 {
	return map[string]int64{"RssAnon": mailtest.ProcStatus("RssAnon"), "RssFile": mailtest.ProcStatus("RssFile")}
}
