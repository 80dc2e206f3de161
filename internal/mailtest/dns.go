package mailtest

import (
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// DNS is an authoritative DNS server on 127.0.0.1 (UDP and TCP) answering from records a
// test sets, in zone-file syntax: "example.test. 300 IN MX 10 mx.example.test.".
type DNS struct {
	Addr string

	mu      sync.Mutex
	records []dns.RR
	fail    bool
}

// NewDNS starts a DNS server; it stops when the test ends.
func NewDNS(t testing.TB, records ...string) *DNS {
	t.Helper()
	d := &DNS{}
	for _, r := range records {
		d.Add(t, r)
	}
	d.Addr = ServeDNS(t, d)
	return d
}

// ServeDNS answers DNS queries with h on 127.0.0.1, UDP and TCP on one port, until the test
// ends, and returns the address.
func ServeDNS(t testing.TB, h dns.Handler) string {
	t.Helper()
	// The port free for UDP may be taken for TCP, so try a few.
	var pc net.PacketConn
	var ln net.Listener
	for try := 0; ; try++ {
		var err error
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if ln, err = net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			break
		}
		pc.Close()
		if try == 20 {
			t.Fatal(err)
		}
	}
	udp := &dns.Server{PacketConn: pc, Handler: h}
	tcp := &dns.Server{Listener: ln, Handler: h}
	go udp.ActivateAndServe()
	go tcp.ActivateAndServe()
	t.Cleanup(func() {
		udp.Shutdown()
		tcp.Shutdown()
	})
	return pc.LocalAddr().String()
}

// Add adds one record in zone-file syntax.
func (d *DNS) Add(t testing.TB, record string) {
	t.Helper()
	rr, err := dns.NewRR(record)
	if err != nil {
		t.Fatalf("DNS record %q: %v", record, err)
	}
	d.mu.Lock()
	d.records = append(d.records, rr)
	d.mu.Unlock()
}

// Fail makes every answer SERVFAIL (a temporary DNS failure) until called with false.
func (d *DNS) Fail(fail bool) {
	d.mu.Lock()
	d.fail = fail
	d.mu.Unlock()
}

// ServeDNS implements dns.Handler: the records matching name and type; NXDOMAIN when the name
// has no records at all.
func (d *DNS) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fail {
		m.Rcode = dns.RcodeServerFailure
		_ = w.WriteMsg(m)
		return
	}
	for _, q := range req.Question {
		known := false
		for _, rr := range d.records {
			h := rr.Header()
			if !strings.EqualFold(h.Name, q.Name) {
				continue
			}
			known = true
			if h.Rrtype == q.Qtype {
				m.Answer = append(m.Answer, dns.Copy(rr))
			}
		}
		if !known {
			m.Rcode = dns.RcodeNameError
		}
	}
	_ = w.WriteMsg(m)
}
