package digest

import (
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"crewmail/internal/chore"
	"crewmail/internal/mailtest"
	"crewmail/lists"
	"crewmail/store"
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

	// A day of a crew: 20 posts in 5 conversations, each a few paragraphs with a quote.
	body := strings.Repeat("We should sow the beans after the last frost, and keep the seedlings under glass until then.\r\n", 6)
	const batch = 50
	for first := 0; first < n; first += batch {
		err := st.Update(func(tx store.Tx) error {
			for i := first; i < min(first+batch, n); i++ {
				addr := fmt.Sprintf("crew%d@lists.example.test", i)
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
