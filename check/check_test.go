package check_test

import (
	"context"
	"strings"
	"testing"

	"crewmail/check"
	"crewmail/delivery"
	"crewmail/internal/mailtest"
)

const key = "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="

func findings(t *testing.T, records ...string) map[string]check.Finding {
	t.Helper()
	dns := mailtest.NewDNS(t, records...)
	fs := check.Domain(context.Background(), delivery.NewResolver(dns.Addr), "lists.example.test",
		check.Setup{Hostname: "mx.example.test", DKIMName: "crewmail._domainkey.lists.example.test", DKIMValue: key})
	out := map[string]check.Finding{}
	for _, f := range fs {
		out[f.What] = f
	}
	return out
}

func TestGoodSetup(t *testing.T) {
	t.Parallel()
	got := findings(t,
		"lists.example.test. 300 IN MX 10 mx.example.test.",
		`lists.example.test. 300 IN TXT "v=spf1 mx -all"`,
		`crewmail._domainkey.lists.example.test. 300 IN TXT "v=DKIM1; k=ed25519; " "p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="`,
		`_dmarc.lists.example.test. 300 IN TXT "v=DMARC1; p=reject"`,
	)
	for _, what := range []string{"MX", "SPF", "DKIM", "DMARC"} {
		if got[what].Level != check.OK {
			t.Errorf("%s: %+v", what, got[what])
		}
	}
}

func TestMissingRecordsSayWhatToPublish(t *testing.T) {
	t.Parallel()
	got := findings(t, "other.example.test. 300 IN A 127.0.0.1")
	for what, want := range map[string]string{
		"MX":    "lists.example.test. IN MX 10 mx.example.test.",
		"SPF":   `lists.example.test. IN TXT "v=spf1 mx -all"`,
		"DKIM":  `crewmail._domainkey.lists.example.test. IN TXT "v=DKIM1; k=ed25519; p=`,
		"DMARC": `_dmarc.lists.example.test. IN TXT "v=DMARC1; p=none`,
	} {
		if !strings.HasPrefix(got[what].Record, want) {
			t.Errorf("%s: record %q, want %q", what, got[what].Record, want)
		}
	}
	if got["MX"].Level != check.Fail || got["SPF"].Level != check.Fail || got["DKIM"].Level != check.Fail || got["DMARC"].Level != check.Warn {
		t.Errorf("levels: %+v", got)
	}
}

func TestWrongRecords(t *testing.T) {
	t.Parallel()
	got := findings(t,
		"lists.example.test. 300 IN MX 10 elsewhere.example.test.",
		`lists.example.test. 300 IN TXT "v=spf1 a -all"`,
		`lists.example.test. 300 IN TXT "v=spf1 mx ~all"`,
		`crewmail._domainkey.lists.example.test. 300 IN TXT "v=DKIM1; k=ed25519; p=AAAAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="`,
		`_dmarc.lists.example.test. 300 IN TXT "v=DMARC1; p=none"`,
	)
	if got["MX"].Level != check.Warn || !strings.Contains(got["MX"].Detail, "elsewhere.example.test") {
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
	dns := mailtest.NewDNS(t)
	fs := check.Domain(context.Background(), delivery.NewResolver(dns.Addr), "lists.example.test", check.Setup{Hostname: "mx.example.test"})
	for _, f := range fs {
		if f.What == "DKIM" && (f.Level != check.Fail || !strings.Contains(f.Detail, "crewmail dkim keygen")) {
			t.Errorf("no key: %+v", f)
		}
	}
}
