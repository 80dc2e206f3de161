// Package web owns the members' web reader: signing in by mail (no password), sessions and
// the CSRF tokens of their forms, and the pages that show a member her lists, their
// conversations and messages, with the downloads of a message, a conversation and an
// attachment. Every page is written on the server (html/template), works without JavaScript
// and loads nothing from anywhere but the reader itself.
package web

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"crewmail/internal/token"
	"crewmail/store"
)

// Lists is what the reader asks of the lists' service (lists.Service): the mail that signs a
// member in, and the Reply addresses of posts, the same the digests carry.
type Lists interface {
	// MailSignIn puts a notice with a sign-in link in the outbox, in tx, from list to to.
	MailSignIn(tx store.Tx, list, to, link string, expires time.Time) error
	// ReplyAddress is the address that replies to post seq of list, to the list.
	ReplyAddress(list string, seq uint64) string
	// PrivateReplyAddress is the address that answers the author of post seq of list alone,
	// through the list (crew+p-TOKEN@), the digests' "Reply to … only".
	PrivateReplyAddress(list string, seq uint64) string
}

// Config is how the reader is reached and what it shows.
type Config struct {
	// BaseURL is where the reader is, as members reach it: "https://lists.example.org" or
	// "http://127.0.0.1:8025/read". Its path is where the reader's pages are mounted; an https
	// URL makes the session cookie Secure.
	BaseURL string
	// Zone is the time zone times are shown in when the list has none of its own; nil: UTC.
	Zone *time.Location
	Log  *slog.Logger
}

// Times of the reader's tokens and limits.
const (
	// SignInLinkValidity is how long a link mailed on request works (once).
	SignInLinkValidity = 15 * time.Minute
	// MemberLinkValidity is how long the link a digest or notice carries works.
	MemberLinkValidity = 7 * 24 * time.Hour
	// SignInMailEvery is how often a sign-in link may be mailed to one address.
	SignInMailEvery = 5 * time.Minute
	// SessionValidity is how long a session lasts without being used.
	SessionValidity = 30 * 24 * time.Hour
	// PageSize is how many conversations a page of a list shows.
	PageSize = 25
)

// Reader is the web reader: an http.Handler for the paths under its base URL.
type Reader struct {
	st     store.Backend
	lists  Lists
	cfg    Config
	base   *url.URL
	prefix string // the base URL's path without its final slash ("" at the root)
	secure bool
	tokens *token.Signer
	csrf   []byte // the key of CSRF tokens, derived from the server secret
	log    *slog.Logger
	mux    *http.ServeMux
	// Now is the clock; tests set it.
	Now func() time.Time

	index archiveIndex
	// mailing bounds the sign-in requests being looked up and mailed at once; mailed waits
	// for them (tests).
	mailing chan struct{}
	mailed  sync.WaitGroup
}

// New makes the reader of the lists in st at cfg.BaseURL.
func New(st store.Backend, lists Lists, cfg Config) (*Reader, error) {
	base, err := url.Parse(cfg.BaseURL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("the web reader needs an http or https base URL, not %q", cfg.BaseURL)
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Zone == nil {
		cfg.Zone = time.UTC
	}
	mac := hmac.New(sha256.New, st.Secret())
	mac.Write([]byte("web-csrf"))
	r := &Reader{st: st, lists: lists, cfg: cfg, base: base, prefix: strings.TrimSuffix(base.Path, "/"),
		secure: base.Scheme == "https", tokens: token.NewSigner(st.Secret()), csrf: mac.Sum(nil),
		log: cfg.Log, Now: time.Now, mailing: make(chan struct{}, 4)}
	r.routes()
	return r, nil
}

// Prefix is the path the reader's pages are under ("" at the root, else "/read").
func (r *Reader) Prefix() string { return r.prefix }

func (r *Reader) routes() {
	m := http.NewServeMux()
	p := r.prefix
	m.HandleFunc("GET "+p+"/{$}", r.home)
	m.HandleFunc("POST "+p+"/signin", r.requestLink)
	m.HandleFunc("GET "+p+"/s/{token}", r.signInPage)
	m.HandleFunc("POST "+p+"/s/{token}", r.signIn)
	m.HandleFunc("POST "+p+"/signout", r.signOut)
	m.HandleFunc("GET "+p+"/settings/sessions", r.sessionsPage)
	m.HandleFunc("POST "+p+"/settings/sessions", r.endSession)
	m.HandleFunc("GET "+p+"/style.css", r.style)
	m.HandleFunc("GET "+p+"/l/{list}/{$}", r.listPage)
	m.HandleFunc("GET "+p+"/l/{list}/search", r.searchPage)
	m.HandleFunc("GET "+p+"/l/{list}/t/{thread}", r.conversationPage)
	m.HandleFunc("GET "+p+"/l/{list}/t/{thread}/conversation.mbox", r.conversationMbox)
	m.HandleFunc("GET "+p+"/l/{list}/m/{seq}", r.messagePage)
	m.HandleFunc("GET "+p+"/l/{list}/m/{seq}/message.eml", r.messageRaw)
	m.HandleFunc("GET "+p+"/l/{list}/m/{seq}/a/{n}/{name}", r.attachment)
	r.settingsRoutes(m)
	m.HandleFunc(p+"/", func(w http.ResponseWriter, req *http.Request) { r.notFound(w, req) })
	r.mux = m
}

// ServeHTTP serves a request under the reader's path, every answer with the headers of
// securityHeaders.
func (r *Reader) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	securityHeaders(w.Header())
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			r.log.Error("web reader: panic", "path", req.URL.Path, "panic", v)
			http.Error(w, "something went wrong on our side", http.StatusInternalServerError)
		}
	}()
	r.mux.ServeHTTP(w, req)
}

// csp lets a page load only the reader's own style sheet and images, be framed by nobody and
// send forms only to the reader.
const csp = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// securityHeaders are on every answer of the reader, pages, downloads and errors alike.
func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
}

// errNotFound is what a visitor gets for a list she may not read and for one that does not
// exist alike, so that nobody learns which lists there are.
var errNotFound = errors.New("not found")

// URLs

// ConversationURL is the web address of conversation thread of list, under the reader at base
// (the [http] base_url).
func ConversationURL(base, list string, thread uint64) string {
	return fmt.Sprintf("%s/l/%s/t/%d", strings.TrimSuffix(base, "/"), url.PathEscape(list), thread)
}

// MessageURL is the web address (the permalink) of post seq of list.
func MessageURL(base, list string, seq uint64) string {
	return fmt.Sprintf("%s/l/%s/m/%d", strings.TrimSuffix(base, "/"), url.PathEscape(list), seq)
}

// ListURL is the web address of list's conversations.
func ListURL(base, list string) string {
	return fmt.Sprintf("%s/l/%s/", strings.TrimSuffix(base, "/"), url.PathEscape(list))
}

// AttachmentURL is the download address of the n-th file (from 1, in the order the message
// page lists them) of post seq of list, named name.
func AttachmentURL(base, list string, seq uint64, n int, name string) string {
	return fmt.Sprintf("%s/a/%d/%s", MessageURL(base, list, seq), n, url.PathEscape(fileName(name)))
}

// SignInURL is the address of the sign-in link with tok (a token of MintSignIn or of the
// reader's sign-in mail).
func SignInURL(base, tok string) string {
	return strings.TrimSuffix(base, "/") + "/s/" + tok
}

// MemberSignInURL mints the link a digest or a notice carries: it signs addr in to the reader
// at base for MemberLinkValidity from now, as often as she opens it. secret is the server's
// (store.Backend.Secret).
func MemberSignInURL(base string, secret []byte, addr string, now time.Time) string {
	tok := token.NewSigner(secret).SignIn(token.SignIn{Address: addr, Expires: now.Add(MemberLinkValidity).Truncate(time.Second)})
	return SignInURL(base, tok)
}

// fileName is a file's name as a download offers it: no path, no control characters, not
// empty.
func fileName(name string) string {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '"' {
			return -1
		}
		return r
	}, name)
	if strings.Trim(name, ". ") == "" {
		return "file"
	}
	return name
}

// Run forgets, every interval until ctx is done, the sign-in links and sessions that expired
// (store.Web.ExpireWeb).
func (r *Reader) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var n int
		err := r.st.Update(func(tx store.Tx) error {
			var err error
			n, err = tx.ExpireWeb(r.Now())
			return err
		})
		if err != nil {
			r.log.Error("web reader: forgetting expired sessions", "err", err)
		} else if n > 0 {
			r.log.Info("web reader: expired sign-in records forgotten", "count", n)
		}
	}
}
