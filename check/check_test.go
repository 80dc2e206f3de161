package check_test

import (
	"context"
	"strings"
	"testing"

	"crewmail/check"
	"crewmail/internal/mailtest"
	"crewmail/verify"
)

const (
	key    = "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
	domain = "lists.example.test"
	host   = "mx.example.test"
)

// server is a good setup of mx.example.test at 192.0.2.1: its address and reverse DNS.
var server = []string{
	"mx.example.test. 300 IN A 192.0.2.1",
	"1.2.0.192.in-addr.arpa. 300 IN PTR mx.example.test.",
}

// setup is what crewmail would publish for lists.example.test as mx.example.test.
func setup() check.Setup {
	return check.Setup{Hostname: host, DKIM: []check.DKIMRecord{{Name: "crewmail._domainkey." + domain, Value: key}}}
}

// run checks lists.example.test with s against a DNS server holding records.
func run(t *testing.T, s check.Setup, records ...string) []check.Finding {
	t.Helper()
	dns := mailtest.NewDNS(t, records...)
	return check.Domain(context.Background(), verify.NewResolver(dns.Addr), domain, s)
}

// byWhat is the first finding of each kind.
func byWhat(fs []check.Finding) map[string]check.Finding {
	out := map[string]check.Finding{}
	for _, f := range fs {
		if _, ok := out[f.What]; !ok {
			out[f.What] = f
		}
	}
	return out
}

func findings(t *testing.T, records ...string) map[string]check.Finding {
	t.Helper()
	return byWhat(run(t, setup(), records...))
}

func TestGoodSetup(t *testing.T) {
	t.Parallel()
	got := findings(t, append(server,
		"lists.example.test. 300 IN MX 10 mx.example.test.",
		`lists.example.test. 300 IN TXT "v=spf1 mx -all"`,
		`crewmail._domainkey.lists.example.test. 300 IN TXT "v=DKIM1; k=ed25519; " "p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="`,
		`_dmarc.lists.example.test. 300 IN TXT "v=DMARC1; p=reject"`,
	)...)
	for _, what := range []string{"HOST", "PTR", "MX", "SPF", "DKIM", "DMARC"} {
		if got[what].Level != check.OK {
			t.Errorf("%s: %+v", what, got[what])
		}
	}
}

func TestMissingRecordsSayWhatToPublish(t *testing.T) {
	t.Parallel()
	got := findings(t, "other.example.test. 300 IN A 127.0.0.1")
	for what, want := range map[string]string{
		"HOST":  "mx.example.test. IN A <this server's public IPv4 address>",
		"MX":    "lists.example.test. IN MX 10 mx.example.test.",
		"SPF":   `lists.example.test. IN TXT "v=spf1 mx -all"`,
		"DKIM":  `crewmail._domainkey.lists.example.test. IN TXT "v=DKIM1; k=ed25519; p=`,
		"DMARC": `_dmarc.lists.example.test. IN TXT "v=DMARC1; p=none`,
	} {
		if !strings.HasPrefix(got[what].Record, want) {
			t.Errorf("%s: record %q, want %q", what, got[what].Record, want)
		}
	}
	if got["HOST"].Level != check.Fail || got["MX"].Level != check.Fail || got["SPF"].Level != check.Fail || got["DKIM"].Level != check.Fail || got["DMARC"].Level != check.Warn {
		t.Errorf("levels: %+v", got)
	}
}

func TestWrongRecords(t *testing.T) {
	t.Parallel()
	got := findings(t, append(server,
		"lists.example.test. 300 IN MX 10 elsewhere.example.test.",
		"elsewhere.example.test. 300 IN A 198.51.100.7",
		`lists.example.test. 300 IN TXT "v=spf1 a -all"`,
		`lists.example.test. 300 IN TXT "v=spf1 mx ~all"`,
		`crewmail._domainkey.lists.example.test. 300 IN TXT "v=DKIM1; k=ed25519; p=AAAAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="`,
		`_dmarc.lists.example.test. 300 IN TXT "v=DMARC1; p=none"`,
	)...)
	if got["MX"].Level != check.Fail || !strings.Contains(got["MX"].Detail, "elsewhere.example.test") || got["MX"].Record != "lists.example.test. IN MX 10 mx.example.test." {
		t.Errorf("MX elsewhere: %+v", got["MX"])
	}
	if got["SPF"].Level != check.Fail || !strings.Contains(got["SPF"].Detail, "2 SPF records") {
		t.Errorf("two SPF records: %+v", got["SPF"])
	}
	if got["DKIM"].Level != check.Fail || !strings.Contains(got["DKIM"].Detail, "different key") {
		t.Errorf("wrong DKIM key: %+v", got["DKIM"])
	}
	if check.Failed([]check.Finding{got["DMARC"]}) || !check.Failed([]check.Finding{got["DKIM"]}) {
		t.Error("Failed misreads the findings")
	}
}

func TestNoKeyYet(t *testing.T) {
	t.Parallel()
	got := byWhat(run(t, check.Setup{Hostname: host}))
	if f := got["DKIM"]; f.Level != check.Fail || !strings.Contains(f.Detail, "crewmail dkim keygen") {
		t.Errorf("no key: %+v", f)
	}
}

func TestMXAtAnotherNameOfThisServer(t *testing.T) {
	t.Parallel()
	got := findings(t, append(server,
		"lists.example.test. 300 IN MX 10 mail.lists.example.test.",
		"mail.lists.example.test. 300 IN A 192.0.2.1",
	)...)
	if f := got["MX"]; f.Level != check.OK || !strings.Contains(f.Detail, "mail.lists.example.test, which has the address of mx.example.test") {
		t.Errorf("MX alias of this server: %+v", f)
	}
}

func TestNullMX(t *testing.T) {
	t.Parallel()
	got := findings(t, append(server, "lists.example.test. 300 IN MX 0 .")...)
	if f := got["MX"]; f.Level != check.Fail || !strings.Contains(f.Detail, "null MX") || f.Record == "" {
		t.Errorf("null MX: %+v", f)
	}
}

func TestDNSFailureFailsEveryLookup(t *testing.T) {
	t.Parallel()
	dns := mailtest.NewDNS(t, server...)
	dns.Fail(true)
	fs := check.Domain(context.Background(), verify.NewResolver(dns.Addr), domain, setup())
	got := byWhat(fs)
	for _, what := range []string{"HOST", "MX", "SPF", "DKIM", "DMARC"} {
		if f := got[what]; f.Level != check.Fail || !strings.Contains(f.Detail, "cannot look up") {
			t.Errorf("%s with SERVFAIL: %+v", what, f)
		}
	}
}

func TestPrint(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	check.Print(&b, domain, []check.Finding{
		{Level: check.OK, What: "HOST", Detail: "fine"},
		{Level: check.Warn, What: "PTR", Detail: "missing", Record: "1.2.0.192.in-addr.arpa. IN PTR mx.example.test."},
	})
	want := "crewmail check lists.example.test\n\n" +
		"OK    HOST   fine\n" +
		"WARN  PTR    missing\n" +
		"             publish:  1.2.0.192.in-addr.arpa. IN PTR mx.example.test.\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

// TestEachSelectorReported: with an RSA and an Ed25519 key, check reports each record, and one
// missing fails the check while the other is OK.
func TestEachSelectorReported(t *testing.T) {
	t.Parallel()
	s := setup()
	s.DKIM = append(s.DKIM, check.DKIMRecord{Name: "crewmail-rsa._domainkey." + domain, Value: "v=DKIM1; k=rsa; p=MIIBIjAN"})
	fs := run(t, s, `crewmail._domainkey.lists.example.test. 300 IN TXT "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="`)
	var dkim []check.Finding
	for _, f := range fs {
		if f.What == "DKIM" {
			dkim = append(dkim, f)
		}
	}
	if len(dkim) != 2 {
		t.Fatalf("%d DKIM findings, want one per selector: %+v", len(dkim), dkim)
	}
	if dkim[0].Level != check.OK || !strings.Contains(dkim[0].Detail, "crewmail._domainkey") {
		t.Errorf("published selector: %+v", dkim[0])
	}
	if dkim[1].Level != check.Fail || !strings.Contains(dkim[1].Detail, "crewmail-rsa._domainkey."+domain+" is not published") ||
		!strings.Contains(dkim[1].Record, "k=rsa") {
		t.Errorf("unpublished selector: %+v", dkim[1])
	}
}
