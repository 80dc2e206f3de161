package postgres_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"crewmail/store"
)

// BenchmarkPostCommit: what a post commits (a 4 KiB message archived, three deliveries
// queued), from 16 concurrent writers, on one list (every post takes the list's counter row:
// conflicts, retried) and on a list per writer. Reports posts per second and the attempts per
// post (1 = no retry).
func BenchmarkPostCommit(b *testing.B) {
	for _, lists := range []int{1, 16} {
		b.Run(fmt.Sprintf("lists=%d", lists), func(b *testing.B) {
			db := open(b)
			for i := range lists {
				if err := db.Update(func(tx store.Tx) error { return tx.CreateList(store.List{Address: fmt.Sprintf("l%d@x.test", i)}) }); err != nil {
					b.Fatal(err)
				}
			}
			raw := make([]byte, 4096)
			var n, runs, writer atomic.Int64
			b.SetParallelism(8) // 16 writers on 2 cores
			start := time.Now()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				list := fmt.Sprintf("l%d@x.test", writer.Add(1)%int64(lists))
				for pb.Next() {
					id := n.Add(1)
					err := db.Update(func(tx store.Tx) error {
						runs.Add(1)
						p, err := tx.AppendPost(list, store.Post{MessageID: fmt.Sprintf("%d@bench", id)}, raw)
						if err != nil {
							return err
						}
						for m := range 3 {
							if _, err := tx.Enqueue(store.Delivery{List: list, Seq: p.Seq, To: fmt.Sprintf("m%d@x.test", m)}); err != nil {
								return err
							}
						}
						return nil
					})
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(n.Load())/time.Since(start).Seconds(), "posts/s")
			b.ReportMetric(float64(runs.Load())/float64(n.Load()), "attempts/post")
		})
	}
}
