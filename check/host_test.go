package check_test

import (
	"strings"
	"testing"

	"github.com/miekg/dns"

	"crewmail/check"
)

func TestHostAddresses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		hostname string
		records  []string
		level    check.Level
		detail   string
		record   string
	}{
		{"good", host, server, check.OK, "mx.example.test has the address 192.0.2.1", ""},
		{"dual stack", host, []string{"mx.example.test. 300 IN A 192.0.2.1", "mx.example.test. 300 IN AAAA 2001:db8::1"},
			check.OK, "192.0.2.1, 2001:db8::1", ""},
		{"no address", host, []string{"mx.example.test. 300 IN MX 10 mx.example.test."},
			check.Fail, "has no address", "mx.example.test. IN A <this server's public IPv4 address>"},
		{"name does not exist", host, nil, check.Fail, "has no address", "mx.example.test. IN A"},
		{"IPv6 only", host, []string{"mx.example.test. 300 IN AAAA 2001:db8::1"},
			check.Fail, "only IPv6 addresses (2001:db8::1)", "mx.example.test. IN A"},
		{"loopback", host, []string{"mx.example.test. 300 IN A 127.0.0.1"}, check.Warn, "cannot reach", ""},
		{"private", host, []string{"mx.example.test. 300 IN A 10.1.2.3"}, check.Warn, "cannot reach", ""},
		{"localhost", "localhost", nil, check.Fail, `hostname is "localhost"`, ""},
		{"bare word", "mail", nil, check.Fail, `hostname is "mail"`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := byWhat(run(t, check.Setup{Hostname: tc.hostname}, tc.records...))["HOST"]
			if got.Level != tc.level || !strings.Contains(got.Detail, tc.detail) || !strings.HasPrefix(got.Record, tc.record) || (tc.record == "") != (got.Record == "") {
				t.Errorf("got %+v, want %s %q, record %q", got, tc.level, tc.detail, tc.record)
			}
		})
	}
}

func TestReverseDNS(t *testing.T) {
	t.Parallel()
	rev6, err := dns.ReverseAddr("2001:db8::1")
	if err != nil {
		t.Fatal(err)
	}
	const a, aaaa = "mx.example.test. 300 IN A 192.0.2.1", "mx.example.test. 300 IN AAAA 2001:db8::1"
	for _, tc := range []struct {
		name    string
		records []string
		want    []check.Finding // one per address, in order; Detail is a part
	}{
		{"good", []string{a, "1.2.0.192.in-addr.arpa. 300 IN PTR mx.example.test."},
			[]check.Finding{{Level: check.OK, Detail: "192.0.2.1 points back to mx.example.test"}}},
		{"good, in capitals", []string{a, "1.2.0.192.in-addr.arpa. 300 IN PTR MX.Example.TEST."},
			[]check.Finding{{Level: check.OK, Detail: "points back"}}},
		{"missing", []string{a}, []check.Finding{{Level: check.Warn,
			Detail: "no reverse DNS (PTR record), and many receivers refuse or junk mail from such addresses: ask your hosting provider to set the reverse DNS of 192.0.2.1 to mx.example.test",
			Record: "1.2.0.192.in-addr.arpa. IN PTR mx.example.test."}}},
		{"the provider's name", []string{a, "1.2.0.192.in-addr.arpa. 300 IN PTR 192-0-2-1.cloud.example.net."}, []check.Finding{{Level: check.Warn,
			Detail: "the reverse DNS of 192.0.2.1 is 192-0-2-1.cloud.example.net, not mx.example.test, and receivers expect the two to agree: ask your hosting provider to set the reverse DNS of 192.0.2.1 to mx.example.test",
			Record: "1.2.0.192.in-addr.arpa. IN PTR mx.example.test."}}},
		{"each address", []string{a, aaaa, "1.2.0.192.in-addr.arpa. 300 IN PTR mx.example.test."}, []check.Finding{
			{Level: check.OK, Detail: "192.0.2.1 points back"},
			{Level: check.Warn, Detail: "set the reverse DNS of 2001:db8::1 to mx.example.test", Record: rev6 + " IN PTR mx.example.test."}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got []check.Finding
			for _, f := range run(t, setup(), tc.records...) {
				if f.What == "PTR" {
					got = append(got, f)
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d PTR findings, want %d: %+v", len(got), len(tc.want), got)
			}
			for i, w := range tc.want {
				if got[i].Level != w.Level || !strings.Contains(got[i].Detail, w.Detail) || got[i].Record != w.Record {
					t.Errorf("address %d: got %+v, want %+v", i, got[i], w)
				}
			}
		})
	}
}
