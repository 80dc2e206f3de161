// Package verify owns the authentication of inbound mail: DKIM signatures, SPF for MAIL FROM and
// HELO, DMARC alignment, and the Authentication-Results header that records them.
//
// The order at the SMTP edge: Verify the message as it arrived, then FilterResults (RFC 8601 §5:
// nobody else may speak for our authserv-id, and only a trusted relay's checkers are kept), then
// put Result.Header on top of what is kept. For mail from a trusted relay, Input carries the
// client the relay recorded in its Received field (TopReceived, ParseReceived).
package verify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // non-UTF-8 display names decode instead of failing
	"github.com/emersion/go-message/mail"

	"crewmail/internal/mailaddr"
	"crewmail/internal/rawmsg"
)

// ErrTemporary is wrapped by the error Verify returns when a temporary DNS failure keeps it from
// reaching a decision; the caller answers 451 4.7.0 and the sender tries again later.
var ErrTemporary = errors.New("verify: temporary DNS failure")

// Verifier checks inbound messages. It is safe for concurrent use.
type Verifier struct {
	// Resolver answers the DNS questions: NewResolver for a caching one. When nil,
	// net.DefaultResolver (no cache).
	Resolver Resolver
}

// Input is one inbound message with what the SMTP session knows about where it came from.
type Input struct {
	RemoteIP net.IP // the connecting client
	Helo     string // its EHLO/HELO name
	MailFrom string // the MAIL FROM address; "" is the null sender
	Message  []byte // the whole message as received, CRLF line endings
	// Relay is the trusted relay the message came through, nil when it came straight from its
	// client: RemoteIP and Helo are then what the relay recorded, and the
	// Authentication-Results say so.
	Relay net.IP
}

// Result is what Verify found. Result values are those of RFC 8601 §2.7.
type Result struct {
	// FromDomain is the domain of the one From address (lowercase, IDNA A-labels); "" when
	// the message has no single usable From domain.
	FromDomain string
	// DKIM has one entry per DKIM-Signature field, in header order; empty for an unsigned
	// message (dkim=none).
	DKIM []DKIMResult
	// SPF is the check of the MAIL FROM identity; with a null sender, of the HELO identity
	// (RFC 7208 §2.4), which is also what DMARC aligns with then.
	SPF SPFResult
	// HeloSPF is the check of the HELO identity (RFC 7208 §2.3).
	HeloSPF SPFResult
	// DMARC is the DMARC evaluation of FromDomain (RFC 7489).
	DMARC DMARCResult
	// Relay and Client: for a message taken from a trusted relay (Input.Relay), the relay's
	// address and the client address SPF was checked for; nil otherwise.
	Relay, Client net.IP
}

// DKIMResult is the verification of one DKIM signature (RFC 6376).
type DKIMResult struct {
	Domain     string // d=, lowercase
	Selector   string // s=
	Algorithm  string // a=, e.g. "rsa-sha256", "ed25519-sha256"
	Identifier string // i=, the AUID; "@" + Domain when absent
	// Result is "pass", "fail", "policy" (not checked: more signatures than we verify),
	// "temperror" or "permerror".
	Result string
	Reason string // why it did not pass, for people
	// Recipients are the addresses of the To and Cc fields this signature covers (named in
	// its h= tag), as written; only for a pass. A signature proves who wrote to whom: a
	// signed post replayed to another list does not name that list here.
	Recipients []string
}

// SPFResult is one SPF check (RFC 7208).
type SPFResult struct {
	// Result is "pass", "fail", "softfail", "neutral", "none", "temperror" or "permerror".
	Result   string
	Domain   string // the domain checked
	Identity string // "mailfrom" or "helo"
	Reason   string // for temperror and permerror
}

// DMARCResult is the DMARC evaluation of the From domain (RFC 7489).
type DMARCResult struct {
	// Result is "pass" or "fail" when a DMARC record applies, "none" without one,
	// "temperror" when it could not be looked up, "permerror" when it (or the From domain)
	// is unusable.
	Result string
	Reason string
	// Policy is what the domain owner asks for mail that fails: "none", "quarantine" or
	// "reject"; sp= when the record was found at the organizational domain of a subdomain and
	// has one (RFC 7489 §6.3). "" without a record.
	Policy string
	// Percent is pct= (100 when absent). Recorded, not applied.
	Percent int
	// RecordDomain is where the record was found: FromDomain, or OrgDomain when FromDomain
	// has none (RFC 7489 §6.6.3). "" without a record.
	RecordDomain string
	OrgDomain    string // the organizational domain of FromDomain (public suffix list)
	StrictDKIM   bool   // adkim=s: the DKIM domain must equal FromDomain
	StrictSPF    bool   // aspf=s: the SPF domain must equal FromDomain
	// Aligned is the method whose pass aligned with FromDomain, "dkim" or "spf" (DKIM when
	// both), "" for neither; AlignedDomain is the authenticated domain. They are filled with
	// or without a DMARC record (relaxed alignment, the default, when there is none): the
	// posting policy asks for aligned authentication, not for a DMARC record.
	Aligned       string
	AlignedDomain string
}

// Pass reports whether authentication aligned with the From domain passed: a DKIM signature
// or the SPF check of a domain aligned with From (RFC 7489 §4.2).
func (r Result) Pass() bool {
	return r.DMARC.Aligned != ""
}

// DKIMAligned reports whether a DKIM signature of a domain aligned with From verified: the
// author's own signature, which survives a copy that changes nothing it signed.
func (r Result) DKIMAligned() bool {
	return r.DMARC.Aligned == "dkim" // DKIM is named when both DKIM and SPF align
}

// DKIMRecipients are the addresses named in the signed To and Cc fields of the passing DKIM
// signatures aligned with From, the ones DKIMAligned and Pass count.
func (r Result) DKIMRecipients() []string {
	var out []string
	for _, k := range r.DKIM {
		if k.Result == "pass" && aligned(k.Domain, r.FromDomain, r.DMARC.StrictDKIM) {
			out = append(out, k.Recipients...)
		}
	}
	return out
}

// SPFAligned is the domain whose SPF check passed aligned with From, "" when none did. It is
// filled also when an aligned DKIM signature passed as well (DMARC.Aligned then says "dkim").
func (r Result) SPFAligned() string {
	if r.FromDomain != "" && r.SPF.Result == "pass" && aligned(r.SPF.Domain, r.FromDomain, r.DMARC.StrictSPF) {
		return r.SPF.Domain
	}
	return ""
}

// maxSignatures is how many DKIM signatures are verified per message; RFC 6376 §6.1 lets a
// verifier limit the work a message can cause.
const maxSignatures = 5

// Verify checks the DKIM signatures of in.Message, SPF for its MAIL FROM and HELO, and the DMARC
// alignment of its From domain. Everything that can be decided is in the Result, also when
// Verify returns an error.
//
// The error wraps ErrTemporary, the cause in its text, exactly when a temporary DNS failure leaves
// the decision open:
//   - the DMARC record could not be looked up (policy and alignment mode unknown), or
//   - no aligned authentication passed, and a DKIM signature whose domain aligns with From, or
//     the SPF check of an aligned domain, ended in temperror: asked again later, it may pass.
//
// A temporary failure that cannot change the outcome (a stranger's signature, or anything
// once an aligned pass is in hand) is recorded as temperror and not returned.
func (v *Verifier) Verify(ctx context.Context, in Input) (Result, error) {
	var res Result
	var fromReason string
	res.FromDomain, fromReason = fromDomain(in.Message)
	if in.Relay != nil {
		res.Relay, res.Client = in.Relay, in.RemoteIP
	}

	var wg sync.WaitGroup
	var dm dmarcLookup
	safely(&wg, func() { res.DKIM = v.checkDKIM(ctx, in.Message) }, func(p any) {
		res.DKIM = []DKIMResult{{Result: "permerror", Reason: fmt.Sprintf("internal error: %v", p)}}
	})
	safely(&wg, func() { res.SPF, res.HeloSPF = v.checkSPF(ctx, in) }, func(p any) {
		res.SPF = SPFResult{Result: "permerror", Identity: "mailfrom", Reason: fmt.Sprintf("internal error: %v", p)}
		res.HeloSPF = SPFResult{Result: "permerror", Identity: "helo", Reason: res.SPF.Reason}
	})
	if res.FromDomain != "" {
		safely(&wg, func() { dm = v.lookupDMARC(ctx, res.FromDomain) }, func(p any) {
			dm = dmarcLookup{err: fmt.Errorf("internal error: %v", p)}
		})
	}
	wg.Wait()

	res.DMARC = evaluateDMARC(res, dm, fromReason)
	return res, temporary(res, dm)
}

// safely runs fn in a goroutine counted by wg; a panic (a library meeting hostile input) is
// turned into a result by onPanic instead of taking the server down.
func safely(wg *sync.WaitGroup, fn func(), onPanic func(any)) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer func() {
			if p := recover(); p != nil {
				onPanic(p)
			}
		}()
		fn()
	}()
}

// temporary is the error Verify returns: see there.
func temporary(res Result, dm dmarcLookup) error {
	if res.DMARC.Result == "temperror" {
		return fmt.Errorf("%w: DMARC record of %s: %s", ErrTemporary, res.FromDomain, res.DMARC.Reason)
	}
	if res.Pass() {
		return nil
	}
	for _, d := range res.DKIM {
		if d.Result == "temperror" && aligned(d.Domain, res.FromDomain, res.DMARC.StrictDKIM) {
			return fmt.Errorf("%w: DKIM key %s._domainkey.%s: %s", ErrTemporary, d.Selector, d.Domain, d.Reason)
		}
	}
	if res.SPF.Result == "temperror" && aligned(res.SPF.Domain, res.FromDomain, res.DMARC.StrictSPF) {
		return fmt.Errorf("%w: SPF of %s: %s", ErrTemporary, res.SPF.Domain, res.SPF.Reason)
	}
	return nil
}

func (v *Verifier) resolver() Resolver {
	if v.Resolver == nil {
		return net.DefaultResolver
	}
	return v.Resolver
}

// fromDomain returns the domain of the message's From address, or "" and why not. RFC 7489 §6.6.1
// leaves messages without exactly one From domain to local policy: here they cannot pass.
func fromDomain(msg []byte) (string, string) {
	th, err := rawmsg.ReadHeader(msg)
	if err != nil {
		return "", "the header cannot be parsed"
	}
	values := th.Values("From")
	if len(values) != 1 {
		return "", fmt.Sprintf("the message has %d From fields", len(values))
	}
	h := mail.Header{Header: message.Header{Header: th}}
	addrs, err := h.AddressList("From")
	if err != nil {
		addrs, err = mail.ParseAddressList(strings.ToValidUTF8(values[0], "\uFFFD"))
	}
	if err != nil || len(addrs) == 0 {
		return "", "the From field cannot be parsed"
	}
	var domain string
	for _, a := range addrs {
		_, d, ok := mailaddr.Split(a.Address)
		if !ok {
			return "", "the From address has no domain"
		}
		d = normalizeDomain(d)
		if domain != "" && d != domain {
			return "", "the From field names addresses in more than one domain"
		}
		domain = d
	}
	if domain == "" {
		return "", "the From address has no domain"
	}
	return domain, ""
}

// normalizeDomain gives a domain the form DNS and the public suffix list use: lowercase ASCII
// (IDNA A-labels), no final dot.
func normalizeDomain(d string) string {
	d = strings.ToLower(strings.TrimSpace(d))
	if a, err := mailaddr.ASCIIDomain(d); err == nil {
		return a
	}
	return strings.TrimSuffix(d, ".")
}
