package check_test

import (
	"strings"
	"testing"

	"crewmail/check"
)

func TestSPFAuthorizesThisServer(t *testing.T) {
	t.Parallel()
	const (
		mxHere      = "lists.example.test. 300 IN MX 10 mx.example.test."
		mxElsewhere = "lists.example.test. 300 IN MX 10 mail.example.net."
		v6          = "mx.example.test. 300 IN AAAA 2001:db8::1"
	)
	spf := func(rec string) string { return `lists.example.test. 300 IN TXT "` + rec + `"` }
	for _, tc := range []struct {
		name      string
		records   []string
		smarthost string
		level     check.Level
		detail    string
		record    string
	}{
		{"mx", []string{mxHere, spf("v=spf1 mx -all")}, "", check.OK, `"v=spf1 mx -all" lets this server (192.0.2.1) send`, ""},
		{"ip4", []string{spf("v=spf1 ip4:192.0.2.0/24 -all")}, "", check.OK, "lets this server", ""},
		{"a of the host", []string{spf("v=spf1 a:mx.example.test -all")}, "", check.OK, "lets this server", ""},
		{"include", []string{spf("v=spf1 include:_spf.provider.test -all"), `_spf.provider.test. 300 IN TXT "v=spf1 ip4:192.0.2.1 ip6:2001:db8::/32 -all"`, v6},
			"", check.OK, "(192.0.2.1, 2001:db8::1)", ""},
		{"redirect", []string{spf("v=spf1 redirect=_spf.provider.test"), `_spf.provider.test. 300 IN TXT "v=spf1 ip4:192.0.2.1 -all"`},
			"", check.OK, "lets this server", ""},
		{"+all", []string{spf("v=spf1 +all")}, "", check.Warn, "lets anyone send as lists.example.test", ""},
		{"another address", []string{mxHere, spf("v=spf1 ip4:198.51.100.7 -all")}, "", check.Fail,
			`"v=spf1 ip4:198.51.100.7 -all" does not let this server send for lists.example.test: 192.0.2.1 (fail)`,
			`lists.example.test. IN TXT "v=spf1 mx ip4:198.51.100.7 -all"`},
		{"softfail", []string{mxHere, spf("v=spf1 ~all")}, "", check.Fail, "192.0.2.1 (softfail)", `lists.example.test. IN TXT "v=spf1 mx ~all"`},
		{"neutral", []string{mxHere, spf("v=spf1 ?all")}, "", check.Fail, "192.0.2.1 (neutral)", `lists.example.test. IN TXT "v=spf1 mx ?all"`},
		{"mx that is not this server", []string{mxElsewhere, spf("v=spf1 mx -all"), "mail.example.net. 300 IN A 198.51.100.7"}, "", check.Fail,
			"192.0.2.1 (fail)", `lists.example.test. IN TXT "v=spf1 a:mx.example.test mx -all"`},
		{"IPv6 left out", []string{mxHere, v6, spf("v=spf1 ip4:192.0.2.1 -all")}, "", check.Fail,
			"2001:db8::1 (fail)", `lists.example.test. IN TXT "v=spf1 mx ip4:192.0.2.1 -all"`},
		{"include of nothing", []string{spf("v=spf1 include:gone.example.test -all")}, "", check.Fail,
			"cannot be evaluated", ""},
		{"unknown mechanism", []string{spf("v=spf1 ipv4:192.0.2.1 -all")}, "", check.Fail, "cannot be evaluated", ""},
		{"through a smarthost", []string{mxHere, spf("v=spf1 include:_spf.relay.test -all"), `_spf.relay.test. 300 IN TXT "v=spf1 ip4:203.0.113.0/24 -all"`},
			"smtp.relay.test:587", check.Warn, "fine if the smarthost smtp.relay.test:587 sends from addresses the record allows", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := setup()
			s.Smarthost = tc.smarthost
			got := byWhat(run(t, s, append(tc.records, server...)...))["SPF"]
			if got.Level != tc.level || !strings.Contains(got.Detail, tc.detail) || got.Record != tc.record {
				t.Errorf("got %+v\nwant %s %q, record %q", got, tc.level, tc.detail, tc.record)
			}
		})
	}
}

func TestSPFWithoutAnAddressToCheck(t *testing.T) {
	t.Parallel()
	got := byWhat(run(t, setup(), `lists.example.test. 300 IN TXT "v=spf1 mx -all"`))["SPF"]
	if got.Level != check.Warn || !strings.Contains(got.Detail, "until mx.example.test has an address") {
		t.Errorf("SPF while the host has no address: %+v", got)
	}
}
