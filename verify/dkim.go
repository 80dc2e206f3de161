package verify

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net/textproto"
	"slices"
	"strings"
	"unicode"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	mtextproto "github.com/emersion/go-message/textproto"
	"github.com/emersion/go-msgauth/dkim"

	"crewmail/internal/rawmsg"
)

// checkDKIM verifies every DKIM signature of msg (the first maxSignatures of them).
func (v *Verifier) checkDKIM(ctx context.Context, msg []byte) []DKIMResult {
	sigs := dkimSignatures(msg)
	if len(sigs) == 0 {
		return nil
	}
	r := v.resolver()
	verifs, err := dkim.VerifyWithOptions(bytes.NewReader(msg), &dkim.VerifyOptions{
		// Passed through unwrapped: go-msgauth only sees a temporary failure in a net.Error.
		LookupTXT:        func(name string) ([]string, error) { return r.LookupTXT(ctx, name) },
		MaxVerifications: maxSignatures,
	})
	if err != nil && !errors.Is(err, dkim.ErrTooManySignatures) {
		// The header could not be read (it never ends, say). go-msgauth then reports no
		// verification, or ones it cleared: none can be trusted.
		for i := range sigs {
			sigs[i].Result, sigs[i].Reason = "permerror", reason(err)
		}
		return sigs
	}
	// go-msgauth verifies the DKIM-Signature fields in header order, as dkimSignatures
	// lists them; they match one to one.
	for i := range sigs {
		if i >= len(verifs) {
			sigs[i].Result, sigs[i].Reason = "policy", "not checked: more than the 5 signatures verified per message"
			continue
		}
		vf := verifs[i]
		if vf.Domain != "" {
			sigs[i].Domain = normalizeDomain(vf.Domain)
		}
		if vf.Identifier != "" {
			sigs[i].Identifier = vf.Identifier
		}
		switch {
		case vf.Err == nil:
			sigs[i].Result = "pass"
			sigs[i].Recipients = signedRecipients(msg, vf.HeaderKeys)
		case dkim.IsTempFail(vf.Err):
			sigs[i].Result, sigs[i].Reason = "temperror", reason(vf.Err)
		case dkim.IsPermFail(vf.Err):
			sigs[i].Result, sigs[i].Reason = "permerror", reason(vf.Err)
		default:
			sigs[i].Result, sigs[i].Reason = "fail", reason(vf.Err)
		}
	}
	return sigs
}

// signedRecipients are the addresses of the To and Cc fields of msg that a signature with the
// h= tag keys covers. A signature covers the last instance of a field it names (RFC 6376
// §5.4.2); a field it does not name proves nothing.
func signedRecipients(msg []byte, keys []string) []string {
	th, err := rawmsg.ReadHeader(msg)
	if err != nil {
		return nil
	}
	var out []string
	for _, name := range []string{"To", "Cc"} {
		vs := th.Values(name) // top first
		if len(vs) == 0 || !slices.ContainsFunc(keys, func(k string) bool { return strings.EqualFold(strings.TrimSpace(k), name) }) {
			continue
		}
		h := mail.Header{Header: message.Header{Header: mtextproto.Header{}}}
		h.Set(name, vs[len(vs)-1])
		addrs, err := h.AddressList(name)
		if err != nil {
			addrs, _ = mail.ParseAddressList(strings.ToValidUTF8(vs[len(vs)-1], "\uFFFD"))
		}
		for _, a := range addrs {
			out = append(out, a.Address)
		}
	}
	return out
}

// dkimSignatures lists the DKIM-Signature fields of msg with the tags Authentication-Results
// names and go-msgauth's Verification lacks (selector, algorithm). It reads the header exactly
// as go-msgauth does (net/textproto lines, a line starting with a space or tab continues the
// field), so that its list and go-msgauth's verifications match one to one.
func dkimSignatures(msg []byte) []DKIMResult {
	tr := textproto.NewReader(bufio.NewReader(bytes.NewReader(msg)))
	var fields []string
	for {
		l, err := tr.ReadLine()
		if err != nil || l == "" {
			break
		}
		if len(fields) > 0 && (l[0] == ' ' || l[0] == '\t') {
			fields[len(fields)-1] += l + "\r\n"
		} else {
			fields = append(fields, l+"\r\n")
		}
	}
	var sigs []DKIMResult
	for _, f := range fields {
		k, v, _ := strings.Cut(f, ":")
		if !strings.EqualFold(strings.TrimSpace(k), "DKIM-Signature") {
			continue
		}
		tags := dkimTags(v)
		s := DKIMResult{
			Domain:     normalizeDomain(stripWhitespace(tags["d"])),
			Selector:   stripWhitespace(tags["s"]),
			Algorithm:  strings.ToLower(stripWhitespace(tags["a"])),
			Identifier: stripWhitespace(tags["i"]),
		}
		if s.Identifier == "" && s.Domain != "" {
			s.Identifier = "@" + s.Domain
		}
		sigs = append(sigs, s)
	}
	return sigs
}

// dkimTags parses a tag list (RFC 6376 §3.2) leniently: the first value of each tag; what
// cannot be read is left out (go-msgauth reports the signature as permerror then).
func dkimTags(v string) map[string]string {
	tags := map[string]string{}
	for _, pair := range strings.Split(v, ";") {
		k, val, ok := strings.Cut(pair, "=")
		k = strings.TrimSpace(k)
		if _, seen := tags[k]; ok && !seen {
			tags[k] = strings.TrimSpace(val)
		}
	}
	return tags
}

func stripWhitespace(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, s)
}

// reason is an error's text for people, without the library's prefix.
func reason(err error) string {
	s := err.Error()
	for _, p := range []string{"dkim: ", "dmarc: "} {
		s = strings.TrimPrefix(s, p)
	}
	return s
}
