package delivery_test

import (
	"net"
	"testing"

	"github.com/emersion/go-smtp"

	"crewmail/delivery"
)

// TestIPv6RefusalFallsBackToIPv4: an MX that refuses us over IPv6 with 5.7.25 (no reverse DNS
// for the address, as Gmail does) gets the message over IPv4 in the same attempt, and later
// mail to it goes over IPv4 alone.
func TestIPv6RefusalFallsBackToIPv4(t *testing.T) {
	t.Parallel()
	v6 := newTestServer(t, serverOptions{listen: "[::1]:0", rcpt: func(string) error {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 25}, Message: "The IP address sending this message does not have a PTR record setup"}
	}})
	port := portOf(t, v6.Addr)
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", itoa(port)))
	if err != nil {
		t.Skipf("127.0.0.1:%d: %v", port, err)
	}
	ln.Close()
	v4 := newTestServer(t, serverOptions{listen: ln.Addr().String()})
	dns := newDNS(t, "dual.test. 300 IN MX 10 mx.dual.test.", "mx.dual.test. 300 IN A 127.0.0.1", "mx.dual.test. 300 IN AAAA ::1")
	mx := delivery.NewMX(delivery.NewResolver(dns.Addr), port, "crewmail.test")
	mx.IPPreference = delivery.IPv6
	if err := sendOnce(mx, "crew-bounces@crew.test", "ann@dual.test", testMsg); err != nil {
		t.Fatalf("Send: %v", err)
	}
	wantOne(t, v4, "crew-bounces@crew.test", "ann@dual.test")
	if err := sendOnce(mx, "crew-bounces@crew.test", "bob@dual.test", testMsg); err != nil {
		t.Fatalf("second Send: %v", err)
	}
	if _, rcpts := v6.Helos(); rcpts != 1 {
		t.Errorf("%d RCPTs over IPv6, want only the first", rcpts)
	}
	if n := len(v4.Messages()); n != 2 {
		t.Errorf("%d messages over IPv4, want 2", n)
	}
}

// TestIPPreference: "both" tries IPv4 first; "ipv4" never dials IPv6.
func TestIPPreference(t *testing.T) {
	t.Parallel()
	v6 := newTestServer(t, serverOptions{listen: "[::1]:0"})
	port := portOf(t, v6.Addr)
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", itoa(port)))
	if err != nil {
		t.Skipf("127.0.0.1:%d: %v", port, err)
	}
	ln.Close()
	v4 := newTestServer(t, serverOptions{listen: ln.Addr().String()})
	dns := newDNS(t, "dual.test. 300 IN MX 10 mx.dual.test.", "mx.dual.test. 300 IN A 127.0.0.1", "mx.dual.test. 300 IN AAAA ::1")
	for _, pref := range []string{"", delivery.IPBoth, delivery.IPv4} {
		mx := delivery.NewMX(delivery.NewResolver(dns.Addr), port, "crewmail.test")
		mx.IPPreference = pref
		if err := sendOnce(mx, "crew-bounces@crew.test", "ann@dual.test", testMsg); err != nil {
			t.Fatalf("%q: Send: %v", pref, err)
		}
		mx.Close()
	}
	if n := len(v4.Messages()); n != 3 {
		t.Errorf("%d messages over IPv4, want 3", n)
	}
	if n, _ := v6.Conns(); n != 0 {
		t.Errorf("%d connections over IPv6, want none", n)
	}
	mx := delivery.NewMX(delivery.NewResolver(dns.Addr), port, "crewmail.test")
	mx.IPPreference = delivery.IPv6
	if err := sendOnce(mx, "crew-bounces@crew.test", "ann@dual.test", testMsg); err != nil {
		t.Fatalf("ipv6: Send: %v", err)
	}
	if n := len(v6.Messages()); n != 1 {
		t.Errorf("ipv6 preference: %d messages over IPv6, want 1", n)
	}
}
