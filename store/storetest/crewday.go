package storetest

import (
	"fmt"
	"strings"
	"time"

	"crewmail/store"
)

// FillCrewDays makes n lists crewI@domain, each with 8 daily members (mI@example.test) and the
// day of a crew archived: 20 posts in 5 conversations from day on, each a few paragraphs with a
// quote and a signature. The digest benchmarks of both backends build their store with it, 50
// lists a commit.
func FillCrewDays(st store.Backend, domain string, n int, day time.Time) error {
	body := strings.Repeat("We should sow the beans after the last frost, and keep the seedlings under glass until then.\r\n", 6)
	const batch = 50
	for first := 0; first < n; first += batch {
		err := st.Update(func(tx store.Tx) error {
			for i := first; i < min(first+batch, n); i++ {
				addr := fmt.Sprintf("crew%d@%s", i, domain)
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
			return err
		}
	}
	return nil
}
