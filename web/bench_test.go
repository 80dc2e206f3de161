package web

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"crewmail/internal/vocab"
	"crewmail/store"
)

// benchArchive fills crew's archive with threads conversations of per posts each, shaped like
// list mail (a few paragraphs, a quote, a signature, about 2 KB), interleaved as conversations
// go on side by side.
func benchArchive(b *testing.B, w *world, threads, per int) {
	b.Helper()
	para := strings.Repeat("We could plant the beans along the fence and keep the corner for tomatoes. ", 6)
	quote := "> " + strings.Repeat("an earlier line that someone wrote before, quoted here ", 1) + "\r\n"
	var firsts []uint64
	for round := range per {
		err := w.st.Update(func(tx store.Tx) error {
			firsts = firsts[:min(len(firsts), threads)]
			for th := range threads {
				raw := fmt.Sprintf("From: Member %d <m%d@x.test>\r\nTo: %s\r\nSubject: Re: Topic %d\r\nDate: Wed, 25 Nov 2026 10:00:00 +0000\r\n"+
					"Message-ID: <%d.%d@x.test>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n\r\n%s\r\nOn Tuesday, someone wrote:\r\n%s%s\r\n-- \r\nMember %d\r\n",
					th%8, th%8, crew, th, round, th, para, para, quote, quote, th%8)
				var thread uint64
				if round > 0 {
					thread = firsts[th]
				}
				p, err := tx.AppendPost(crew, store.Post{Received: time.Now().UTC(), MessageID: fmt.Sprintf("%d.%d@x.test", round, th),
					From: fmt.Sprintf("m%d@x.test", th%8), Subject: fmt.Sprintf("Re: Topic %d", th), Thread: thread, Verified: vocab.VerifiedDKIM}, []byte(raw))
				if err != nil {
					return err
				}
				if round == 0 {
					firsts = append(firsts, p.Seq)
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// signedIn is a client with a session of addr.
func (w *world) signedIn(b *testing.B, addr string) *http.Client {
	secret := randomToken(32)
	err := w.st.Update(func(tx store.Tx) error {
		return tx.PutSession(store.Session{ID: sessionID(secret), Address: addr, Created: time.Now(), Seen: time.Now(), Expires: time.Now().Add(time.Hour)})
	})
	if err != nil {
		b.Fatal(err)
	}
	name := w.reader.sessionCookie()
	return &http.Client{Transport: cookieTransport{name + "=" + secret}}
}

type cookieTransport struct{ cookie string }

func (c cookieTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Cookie", c.cookie)
	return http.DefaultTransport.RoundTrip(r)
}

func fetch(b *testing.B, c *http.Client, url string) {
	resp, err := c.Get(url)
	if err != nil {
		b.Fatal(err)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		b.Fatalf("%s: %d %v", url, resp.StatusCode, err)
	}
}

// BenchmarkConversationPage: a member reads a 10-message conversation of an archive of 10,000
// (1,000 conversations), over HTTP on loopback, the reader's index of the archive made; then
// the first page after a new post (which reads the archive's records again), and the list's
// first page. Figures: p50 and p99 of each, in ms.
func BenchmarkConversationPage(b *testing.B) {
	w := newWorld(b)
	const threads, per = 1000, 10
	benchArchive(b, w, threads, per)
	c := w.signedIn(b, "bob@x.test")
	conv := func(i int) string { return fmt.Sprintf("%s/l/%s/t/%d", w.srv.URL, crew, 1+i%threads) }
	fetch(b, c, conv(0))     // the index is made, the first conversation read
	for i := range threads { // every conversation read once: \Seen set, as after a first visit
		fetch(b, c, conv(i))
	}
	var times []time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		fetch(b, c, conv(i))
		times = append(times, time.Since(start))
	}
	b.StopTimer()
	report(b, "conversation", times)

	// After a new post: the first page reads the archive's records again.
	var rebuild []time.Duration
	for i := range 20 {
		w.archive(b, crew, 0, "ann@x.test", "Ann", fmt.Sprintf("New %d", i), "news\r\n", vocab.VerifiedDKIM)
		start := time.Now()
		fetch(b, c, conv(i))
		rebuild = append(rebuild, time.Since(start))
	}
	report(b, "after-new-post", rebuild)
	var list []time.Duration
	for range 50 {
		start := time.Now()
		fetch(b, c, w.srv.URL+"/l/"+crew+"/")
		list = append(list, time.Since(start))
	}
	report(b, "list-page", list)
}

func report(b *testing.B, name string, times []time.Duration) {
	slices.Sort(times)
	p := func(q float64) float64 {
		return float64(times[min(len(times)-1, int(q*float64(len(times))))].Microseconds()) / 1000
	}
	b.ReportMetric(p(0.5), name+"-p50-ms")
	b.ReportMetric(p(0.99), name+"-p99-ms")
	fmt.Printf("%s: %d pages, p50 %.2f ms, p99 %.2f ms, max %.2f ms\n", name, len(times), p(0.5), p(0.99), float64(times[len(times)-1].Microseconds())/1000)
}
