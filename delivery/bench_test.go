package delivery_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"crewmail/delivery"
	"crewmail/store"
)

// benchBody is a post of about 4 KiB, the size bench/post-load sends.
var benchBody = bytes.Repeat([]byte(strings.Repeat("x", 70)+"\r\n"), 58)

// memberCopy is member i's copy of post seq: the same body and author's fields for everyone,
// the list's block with the member's own one-click link on top, as lists.Service.Compose
// writes it.
func memberCopy(seq, member uint64) []byte {
	return append(fmt.Appendf(nil, "List-Id: crew <crew.lists.example.test>\r\n"+
		"List-Unsubscribe: <https://lists.example.test/u/%d-%d>, <mailto:crew+unsubscribe@lists.example.test>\r\n"+
		"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\nFrom: a@example.test\r\nTo: crew@lists.example.test\r\n"+
		"Subject: post %d\r\nMessage-ID: <%d@example.test>\r\n\r\n", seq, member, seq, seq), benchBody...)
}

// BenchmarkSignature is one signature's time with each kind of key, and the signing ceiling it
// sets: the deliveries a second the machine's cores could sign if they did nothing else
// (GOMAXPROCS ÷ the time of one).
func BenchmarkSignature(b *testing.B) {
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	_, ek, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	hashed := sha256.Sum256([]byte("header"))
	for _, tt := range []struct {
		name string
		key  crypto.Signer
		opts crypto.SignerOpts
	}{{"rsa", rk, crypto.SHA256}, {"ed25519", ek, crypto.Hash(0)}} {
		b.Run(tt.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := tt.key.Sign(rand.Reader, hashed[:], tt.opts); err != nil {
					b.Fatal(err)
				}
			}
			per := b.Elapsed().Seconds() / float64(b.N)
			b.ReportMetric(float64(runtime.GOMAXPROCS(0))/per, "ceiling-deliveries/s")
		})
	}
}

// discardSink is an SMTP server that counts messages and keeps nothing, as Postfix's smtp-sink.
type discardSink struct{ n atomic.Int64 }

func (s *discardSink) NewSession(*smtp.Conn) (smtp.Session, error) { return s, nil }
func (s *discardSink) Mail(string, *smtp.MailOptions) error        { return nil }
func (s *discardSink) Rcpt(string, *smtp.RcptOptions) error        { return nil }
func (s *discardSink) Reset()                                      {}
func (s *discardSink) Logout() error                               { return nil }
func (s *discardSink) Data(r io.Reader) error {
	_, err := io.Copy(io.Discard, r)
	s.n.Add(1)
	return err
}

// BenchmarkDeliveries is deliveries a second from the outbox to a smarthost, 8 workers (the
// server's default) over reused sessions, each member's copy signed on its own with no key, an
// RSA-2048 key or an Ed25519 key. The posts have 8 members; every attempt is recorded in the
// store (fsync'd). The smarthost is an in-process go-smtp server that discards, or the one at
// CREWMAIL_BENCH_SMARTHOST (host:port, e.g. Postfix's smtp-sink).
func BenchmarkDeliveries(b *testing.B) {
	for _, algo := range []string{"none", "rsa", "ed25519"} {
		b.Run("key="+algo, func(b *testing.B) {
			addr := os.Getenv("CREWMAIL_BENCH_SMARTHOST")
			if addr == "" {
				sink := smtp.NewServer(&discardSink{})
				sink.Domain, sink.ReadTimeout, sink.WriteTimeout = "sink.test", time.Minute, time.Minute
				sink.ErrorLog = discardLogger{}
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					b.Fatal(err)
				}
				addr = ln.Addr().String()
				go sink.Serve(ln)
				b.Cleanup(func() { sink.Close() })
			}
			cfg := delivery.Config{Workers: 8}
			if algo != "none" {
				dir := b.TempDir()
				if _, _, err := delivery.GenerateKey(dir, "lists.example.test", "s", algo); err != nil {
					b.Fatal(err)
				}
				cfg.Signer = delivery.NewSigner(dir)
			}
			st := openStore(b)
			rows := make([]store.Delivery, b.N)
			for i := range rows {
				seq, member := uint64(i/8+1), uint64(i%8+1)
				rows[i] = store.Delivery{List: "crew@lists.example.test", Seq: seq, Member: member,
					From: fmt.Sprintf("crew+bounces-%d@lists.example.test", member), To: fmt.Sprintf("m%d@example.test", member), Created: time.Now()}
			}
			for i := 0; i < len(rows); i += 1000 {
				enqueue(b, st, rows[i:min(i+1000, len(rows))]...)
			}
			composer := composerFunc(func(d store.Delivery) ([]byte, error) { return memberCopy(d.Seq, d.Member), nil })
			sh := delivery.NewSmarthost(addr, "crewmail.test", delivery.TLSNone, "", "", nil, nil)
			q := delivery.New(st, composer, sh, cfg, slog.New(slog.NewJSONHandler(io.Discard, nil)))
			b.ResetTimer()
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- q.Run(ctx) }()
			for {
				var n int
				if err := st.View(func(tx store.Tx) error { var err error; n, err = tx.OutboxSize(); return err }); err != nil {
					b.Fatal(err)
				}
				if n == 0 {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
			cancel()
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		})
	}
}
