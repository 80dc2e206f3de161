// Package htmlpost owns how the content of a post becomes safe HTML and plain text for
// readers: the one allow-list policy every piece of HTML that comes from a post passes
// (bluemonday; links kept, no script, style, form, event handler, remote image or tracking
// parameter), and the rendering of a post's own text into HTML (paragraphs re-flowed, bare URLs
// linked, simple tables kept) and into plain text (links as numbered references, tables as
// aligned columns). Digests use it; the web reader shares the policy.
package htmlpost

import (
	"net/url"
	"strings"
	"sync"

	"github.com/microcosm-cc/bluemonday"
)

// policy is the allow-list, built once: a bluemonday.Policy is safe for concurrent use once
// built, and nothing changes it after.
var policy = sync.OnceValue(func() *bluemonday.Policy {
	p := bluemonday.NewPolicy()
	// Structure and emphasis only. No img (a remote image tells the sender who opened the
	// mail, and when), no style or class (a post must not change the layout around it), no
	// form, no iframe, no event handler: what is not listed goes, and the contents of script,
	// style and the like with it (bluemonday's default).
	p.AllowElements("p", "br", "div", "span", "b", "strong", "i", "em", "u", "s", "small",
		"sub", "sup", "blockquote", "pre", "code", "ul", "ol", "li", "hr",
		"h1", "h2", "h3", "h4", "h5", "h6",
		"table", "thead", "tbody", "tfoot", "tr", "th", "td", "caption")
	p.AllowAttrs("colspan", "rowspan").Matching(bluemonday.Integer).OnElements("td", "th")
	p.AllowAttrs("href").OnElements("a")
	p.AllowURLSchemes("http", "https", "mailto")
	p.RequireParseableURLs(true)
	p.AllowRelativeURLs(false)
	p.RequireNoFollowOnLinks(true)
	p.RequireNoReferrerOnLinks(true)
	return p
})

// Sanitize returns the HTML of a post (a fragment or a whole document) as the policy allows
// it: links to http, https and mailto URLs with their tracking parameters removed (CleanURL),
// structure and emphasis kept, everything else left out.
func Sanitize(html string) string {
	return policy().Sanitize(cleanLinks(html))
}

// trackers are query parameters that only tell a sender who followed a link.
var trackers = []string{"utm_", "fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid", "_hsenc",
	"_hsmi", "mkt_tok", "yclid", "igshid", "oly_enc_id", "oly_anon_id", "vero_id", "__s", "ref_src"}

// CleanURL returns the URL a link should lead to, or "" for one no reader should follow from a
// digest: only http, https and mailto (RFC 6068) URLs, with tracking parameters (utm_*, fbclid,
// …) removed, and a redirector that wraps the real URL (Outlook's "safe links", Google's /url)
// unwrapped.
func CleanURL(raw string) string {
	raw = strings.TrimSpace(Clean(raw))
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" && u.Scheme != "mailto" {
		return ""
	}
	switch strings.ToLower(u.Scheme) {
	case "mailto":
		return u.String()
	case "http", "https":
	default:
		return ""
	}
	if u.Host == "" || u.User != nil {
		return "" // user:password@host is a trick to show one host and go to another
	}
	for range 3 { // a redirector inside a redirector
		inner := unwrap(u)
		if inner == nil {
			break
		}
		u = inner
	}
	q := u.Query()
	changed := false
	for k := range q {
		lk := strings.ToLower(k)
		for _, t := range trackers {
			if strings.HasPrefix(lk, t) {
				q.Del(k)
				changed = true
				break
			}
		}
	}
	if changed {
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// unwrap returns the URL a known redirector leads to, or nil.
func unwrap(u *url.URL) *url.URL {
	host := strings.ToLower(u.Hostname())
	var inner string
	switch {
	case strings.HasSuffix(host, ".safelinks.protection.outlook.com"):
		inner = u.Query().Get("url")
	case (host == "www.google.com" || host == "google.com") && u.Path == "/url":
		inner = u.Query().Get("q")
		if inner == "" {
			inner = u.Query().Get("url")
		}
	}
	if inner == "" {
		return nil
	}
	v, err := url.Parse(inner)
	if err != nil || (v.Scheme != "http" && v.Scheme != "https") || v.Host == "" || v.User != nil {
		return nil
	}
	return v
}
