package mailaddr

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct{ in, want, unicode, err string }{
		{"alice@example.test", "alice@example.test", "alice@example.test", ""},
		{"<Alice@Example.TEST>", "alice@example.test", "alice@example.test", ""},
		{"  bob@example.test. ", "bob@example.test", "bob@example.test", ""},
		{"Jürgen@Bücher.example", "jürgen@xn--bcher-kva.example", "jürgen@bücher.example", ""},
		{"JÜRGEN@BÜCHER.EXAMPLE", "jürgen@xn--bcher-kva.example", "jürgen@bücher.example", ""},
		{"jürgen@XN--BCHER-KVA.example", "jürgen@xn--bcher-kva.example", "jürgen@bücher.example", ""},
		{"root@localhost", "root@localhost", "root@localhost", ""},
		{"a@b@c.test", "a@b@c.test", "a@b@c.test", ""},
		{"no-at-sign", "", "", "not an email address"},
		{"@example.test", "", "", "not an email address"},
		{"alice@", "", "", "not an email address"},
		{"alice@nodot", "", "", "valid domain"},
		{"a b@example.test", "", "", "not an email address"},
		{`"quoted"@example.test`, "", "", "not an email address"},
		{"alice@exa mple.test", "", "", "valid domain"},
		{"alice@a..b", "", "", "valid domain"},
		{"alice@-a.test", "", "", "valid domain"},
		{strings.Repeat("a", 65) + "@example.test", "", "", "not an email address"},
		{"alice@\xbc.test", "", "", "not valid UTF-8"},
	} {
		a, err := Parse(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Parse(%q) = %q, %v; want error %q", tc.in, a, err, tc.err)
			}
			if !a.IsZero() {
				t.Errorf("Parse(%q) failed but returned %q", tc.in, a)
			}
			continue
		}
		if err != nil || a.String() != tc.want || a.Unicode() != tc.unicode {
			t.Errorf("Parse(%q) = %q (%q), %v; want %q (%q)", tc.in, a, a.Unicode(), err, tc.want, tc.unicode)
		}
		if n, err := Normalize(tc.in); n != tc.want || err != nil {
			t.Errorf("Normalize(%q) = %q, %v; want %q", tc.in, n, err, tc.want)
		}
	}
}

// TestFormsAreOneAddress: the spellings a member may use for one mailbox parse to one equal
// value, and its parts are those of its normal form.
func TestFormsAreOneAddress(t *testing.T) {
	want, err := Parse("jürgen@xn--bcher-kva.example")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"Jürgen@Bücher.example", "<jürgen@bücher.example.>", want.Unicode(), want.String()} {
		if a, err := Parse(s); err != nil || a != want {
			t.Errorf("Parse(%q) = %q, %v; want the same address as %q", s, a, err, want)
		}
	}
	if want.Local() != "jürgen" || want.Domain() != "xn--bcher-kva.example" || want.UnicodeDomain() != "bücher.example" {
		t.Errorf("parts of %q: %q, %q, %q", want, want.Local(), want.Domain(), want.UnicodeDomain())
	}
	if other, _ := Parse("juergen@xn--bcher-kva.example"); other == want {
		t.Errorf("%q and %q are equal", other, want)
	}
}

func TestSplit(t *testing.T) {
	for _, tc := range []struct {
		in, local, domain string
		ok                bool
	}{
		{"crew@lists.example.test", "crew", "lists.example.test", true},
		{`"odd@local"@example.test`, `"odd@local"`, "example.test", true},
		{"alice@", "alice", "", true},
		{"no-at-sign", "no-at-sign", "", false},
	} {
		local, domain, ok := Split(tc.in)
		if local != tc.local || domain != tc.domain || ok != tc.ok {
			t.Errorf("Split(%q) = %q, %q, %v; want %q, %q, %v", tc.in, local, domain, ok, tc.local, tc.domain, tc.ok)
		}
	}
}

func TestDomains(t *testing.T) {
	for _, tc := range []struct{ in, ascii, parsed string }{
		{"Example.TEST.", "example.test", "example.test"},
		{"Bücher.example", "xn--bcher-kva.example", "xn--bcher-kva.example"},
		{"nodot", "nodot", ""},
	} {
		if got, err := ASCIIDomain(tc.in); got != tc.ascii || err != nil {
			t.Errorf("ASCIIDomain(%q) = %q, %v; want %q", tc.in, got, err, tc.ascii)
		}
		got, err := ParseDomain(tc.in)
		if got != tc.parsed || (err != nil) != (tc.parsed == "") {
			t.Errorf("ParseDomain(%q) = %q, %v; want %q", tc.in, got, err, tc.parsed)
		}
	}
	if got, err := ASCIIDomain("xn--a.test"); err == nil {
		t.Errorf("ASCIIDomain(%q) = %q, want an error", "xn--a.test", got)
	}
}

// TestToASCII: a peer without SMTPUTF8 gets the domain in A-labels; the local part is sent as
// it is, and a non-ASCII one cannot be sent (RFC 6531 §3.2).
func TestToASCII(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		wantErr  bool
	}{
		{in: "ann@example.test", want: "ann@example.test"},
		{in: "Ann@bücher.example", want: "Ann@xn--bcher-kva.example"},
		{in: "ann@BÜCHER.example", want: "ann@xn--bcher-kva.example"},
		{in: `"odd@local"@münchen.example`, want: `"odd@local"@xn--mnchen-3ya.example`},
		{in: "jörg@example.test", wantErr: true},
		{in: "no-at-sign", wantErr: true},
	} {
		got, err := ToASCII(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("ToASCII(%q) = %q, %v; want %q, error=%v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}
