package delivery

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-msgauth/dkim"
)

// DKIM keys live in the data folder. A domain's first key is dkim/DOMAIN.pem, a PKCS #8
// private key whose PEM header "Selector" names the DNS record it is published under; further
// keys (a second algorithm: RFC 8463 §4 recommends signing with Ed25519 and RSA together) are
// dkim/DOMAIN/SELECTOR.pem, in the same format. Every key of a domain signs every message.

// KeyFile is where the first key of domain is kept under dir (the data folder's dkim/).
func KeyFile(dir, domain string) string {
	return filepath.Join(dir, strings.ToLower(domain)+".pem")
}

// keyDir is the folder of domain's further keys, one file per selector.
func keyDir(dir, domain string) string {
	return filepath.Join(dir, strings.ToLower(domain))
}

// DefaultSelector is the selector of a domain's first key when none is given.
const DefaultSelector = "crewmail"

// Key describes one DKIM key of a domain: where it is kept and the DNS record to publish.
type Key struct {
	Selector string
	Algo     string // "rsa" or "ed25519"
	Path     string
	Name     string // SELECTOR._domainkey.DOMAIN
	Value    string // the TXT value
}

// GenerateKey makes a new DKIM key for domain ("rsa" for RSA-2048, or "ed25519"), writes it
// under dir, and returns the DNS record to publish: its name and its TXT value. The first key
// of a domain goes to KeyFile; a key beside it must be of the other algorithm and under another
// selector. An empty selector means DefaultSelector for the first key and "crewmail-ALGO" for
// the second. An existing key is never overwritten: mail signed with it may still be in flight.
func GenerateKey(dir, domain, selector, algo string) (name, value string, err error) {
	k, err := generateKey(dir, domain, selector, algo)
	if err != nil {
		return "", "", err
	}
	return k.Name, k.Value, nil
}

// AddKey is GenerateKey returning the whole description of the key it made.
func AddKey(dir, domain, selector, algo string) (Key, error) {
	return generateKey(dir, domain, selector, algo)
}

func generateKey(dir, domain, selector, algo string) (Key, error) {
	domain = strings.ToLower(domain)
	have, err := Keys(dir, domain)
	if err != nil {
		return Key{}, err
	}
	path := KeyFile(dir, domain)
	if len(have) > 0 {
		if selector == "" {
			selector = DefaultSelector + "-" + algo
		}
		for _, k := range have {
			if k.Algo == algo {
				return Key{}, fmt.Errorf("%s already has a DKIM key (%s); remove it first to make a new one", domain, k.Path)
			}
			if k.Selector == selector {
				return Key{}, fmt.Errorf("%s already has a DKIM key under selector %s (%s); choose another with -selector", domain, selector, k.Path)
			}
		}
		path = filepath.Join(keyDir(dir, domain), selector+".pem")
	}
	if selector == "" {
		selector = DefaultSelector
	}
	if strings.ContainsAny(selector, " ./\\@") {
		return Key{}, fmt.Errorf("selector %q is not a DNS label", selector)
	}
	var signer crypto.Signer
	switch algo {
	case "rsa":
		if signer, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			return Key{}, err
		}
	case "ed25519":
		if _, signer, err = ed25519.GenerateKey(rand.Reader); err != nil {
			return Key{}, err
		}
	default:
		return Key{}, fmt.Errorf("algorithm must be rsa or ed25519, not %q", algo)
	}
	der, err := x509.MarshalPKCS8PrivateKey(signer)
	if err != nil {
		return Key{}, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return Key{}, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return Key{}, fmt.Errorf("%s already has a DKIM key (%s); remove it first to make a new one", domain, path)
	}
	if err != nil {
		return Key{}, err
	}
	err = pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Headers: map[string]string{"Selector": selector}, Bytes: der})
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return Key{}, err
	}
	return describe(domain, path, &key{selector: selector, signer: signer}), nil
}

func describe(domain, path string, k *key) Key {
	algo := k.algo()
	return Key{Selector: k.selector, Algo: algo, Path: path, Name: k.selector + "._domainkey." + strings.ToLower(domain),
		Value: dnsRecord(algo, k.signer.Public())}
}

// dnsRecord is the TXT value of a DKIM key record (RFC 6376 §3.6.1; RFC 8463 for Ed25519,
// whose p= is the raw 32-byte key).
func dnsRecord(keyType string, pub crypto.PublicKey) string {
	var p []byte
	if k, ok := pub.(ed25519.PublicKey); ok {
		p = k
	} else {
		p, _ = x509.MarshalPKIXPublicKey(pub)
	}
	return "v=DKIM1; k=" + keyType + "; p=" + base64.StdEncoding.EncodeToString(p)
}

// RecordOf returns the DNS record for the first key of domain under dir.
func RecordOf(dir, domain string) (name, value string, err error) {
	ks, err := Keys(dir, domain)
	if err != nil {
		return "", "", err
	}
	if len(ks) == 0 {
		return "", "", fmt.Errorf("%s has no DKIM key: %w", domain, fs.ErrNotExist)
	}
	return ks[0].Name, ks[0].Value, nil
}

// Keys returns every key of domain under dir: the first one, then the others by selector.
// A domain without keys has none, and no error.
func Keys(dir, domain string) ([]Key, error) {
	loaded, paths, err := loadKeys(dir, strings.ToLower(domain))
	if err != nil {
		return nil, err
	}
	out := make([]Key, len(loaded))
	for i, k := range loaded {
		out[i] = describe(domain, paths[i], k)
	}
	return out, nil
}

// loadKeys reads every key file of domain, in the order Keys lists them.
func loadKeys(dir, domain string) ([]*key, []string, error) {
	paths := []string{KeyFile(dir, domain)}
	more, err := filepath.Glob(filepath.Join(keyDir(dir, domain), "*.pem"))
	if err != nil {
		return nil, nil, err
	}
	sort.Strings(more)
	paths = append(paths, more...)
	var keys []*key
	var found []string
	for _, p := range paths {
		k, err := loadKey(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		keys = append(keys, k)
		found = append(found, p)
	}
	return keys, found, nil
}

type key struct {
	selector string
	signer   crypto.Signer
}

func (k *key) algo() string {
	if _, ok := k.signer.Public().(ed25519.PublicKey); ok {
		return "ed25519"
	}
	return "rsa"
}

func loadKey(path string) (*key, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" || block.Headers["Selector"] == "" {
		return nil, fmt.Errorf("%s is not a crewmail DKIM key (PEM \"PRIVATE KEY\" with a Selector header)", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: unsupported key type", path)
	}
	return &key{selector: block.Headers["Selector"], signer: signer}, nil
}

// signedHeaders are the fields a crewmail signature covers. Those crewmail sets, and those that
// change what a reader sees, are listed once more than they can appear (oversigning, RFC 6376
// §8.15): nobody can add a second one below the signature.
var signedHeaders = []string{
	"From", "From", "Reply-To", "Reply-To", "Subject", "Subject", "Date", "Date",
	"To", "To", "Cc", "Cc", "Message-ID", "Message-ID", "In-Reply-To", "In-Reply-To",
	"References", "References", "MIME-Version", "Content-Type", "Content-Transfer-Encoding",
	"List-Id", "List-Id", "List-Post", "List-Post", "List-Help", "List-Help",
	"List-Unsubscribe", "List-Unsubscribe", "List-Unsubscribe-Post", "List-Unsubscribe-Post",
	"List-Archive", "List-Archive", "Precedence", "Precedence", "X-Loop", "X-Loop",
	"Auto-Submitted", "Auto-Submitted", "Sender", "Sender",
}

// signedLower is signedHeaders in lower case; signedNames each name of it once.
var signedLower, signedNames = func() (lower, names []string) {
	for _, h := range signedHeaders {
		l := strings.ToLower(h)
		lower = append(lower, l)
		if !slices.Contains(names, l) {
			names = append(names, l)
		}
	}
	return lower, names
}()

// Signer adds DKIM signatures (relaxed/relaxed, RFC 6376), one with each key of the list's
// domain, to everything crewmail sends. Each member's copy of a post differs from the others
// only in its header (her one-click link, RFC 8058 §4, which the signature must cover), so the
// body hash is computed once per post and only the header is hashed and signed per member
// (docs/design.md, "Where two requirements meet"). A message identical for every recipient is
// signed once: the signature is kept for the next copy.
type Signer struct {
	dir string
	Now func() time.Time

	mu     sync.Mutex
	keys   map[string][]*key    // by domain
	miss   map[string]time.Time // when the keys of a domain were last read
	cache  recent               // message digest → DKIM-Signature fields
	bodies recent               // body digest → its bh= value
}

// NewSigner signs with the keys under dir (the data folder's dkim/). Keys made while the
// server runs are picked up within a minute.
func NewSigner(dir string) *Signer {
	return &Signer{dir: dir, Now: time.Now, keys: map[string][]*key{}, miss: map[string]time.Time{}}
}

const signCacheSize = 256

// recent keeps the latest signCacheSize values by digest; the zero value is ready. The
// caller holds the Signer's lock.
type recent struct {
	m     map[[32]byte]string
	order [][32]byte
}

func (r *recent) get(k [32]byte) (string, bool) {
	v, ok := r.m[k]
	return v, ok
}

func (r *recent) put(k [32]byte, v string) {
	if r.m == nil {
		r.m = map[[32]byte]string{}
	}
	if _, dup := r.m[k]; dup {
		return
	}
	if len(r.order) >= signCacheSize {
		delete(r.m, r.order[0])
		r.order = r.order[1:]
	}
	r.m[k] = v
	r.order = append(r.order, k)
}

// keysFor returns the keys of domain, read again at most once a minute so that a key added
// while the server runs (a first one, or a second algorithm) signs within a minute.
func (s *Signer) keysFor(domain string) ([]*key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if seen, ok := s.miss[domain]; ok && s.Now().Sub(seen) < time.Minute {
		return s.keys[domain], nil
	}
	ks, _, err := loadKeys(s.dir, domain)
	if err != nil {
		return nil, err
	}
	s.miss[domain] = s.Now()
	s.keys[domain] = ks
	return ks, nil
}

// Sign returns msg with a DKIM-Signature field for each key of domain on top, or msg
// unchanged when domain has no key.
func (s *Signer) Sign(domain string, msg []byte) ([]byte, error) {
	ks, err := s.keysFor(strings.ToLower(domain))
	if err != nil || len(ks) == 0 {
		return msg, err
	}
	header, body := splitMessage(msg)
	bodyDigest := sha256.Sum256(body)
	h := sha256.New()
	h.Write([]byte(domain + "\x00"))
	for _, k := range ks {
		h.Write([]byte(k.selector + "\x00"))
	}
	h.Write(header)
	h.Write(bodyDigest[:])
	var digest [32]byte
	h.Sum(digest[:0])
	s.mu.Lock()
	field, ok := s.cache.get(digest)
	bh, bhOK := s.bodies.get(bodyDigest)
	s.mu.Unlock()
	if !ok {
		if !bhOK {
			if bh, err = bodyHash(body); err != nil {
				return nil, fmt.Errorf("DKIM body hash for %s: %w", domain, err)
			}
		}
		fields := headerFields(header)
		// Each signature covers the message as it is without the others (DKIM-Signature is
		// not among the signed fields), so a receiver checks each on its own (RFC 6376 §4.2).
		var all strings.Builder
		for _, k := range ks {
			f, err := signHeader(domain, k, fields, bh, s.Now())
			if err != nil {
				return nil, fmt.Errorf("DKIM sign for %s with selector %s: %w", domain, k.selector, err)
			}
			all.WriteString(f)
		}
		field = all.String()
		s.mu.Lock()
		s.cache.put(digest, field)
		s.bodies.put(bodyDigest, bh)
		s.mu.Unlock()
	}
	out := make([]byte, 0, len(field)+len(msg))
	return append(append(out, field...), msg...), nil
}

// splitMessage cuts msg after the empty line that ends its header; a message without one is
// all header.
func splitMessage(msg []byte) (header, body []byte) {
	if bytes.HasPrefix(msg, []byte("\r\n")) {
		return nil, msg[2:]
	}
	if i := bytes.Index(msg, []byte("\r\n\r\n")); i >= 0 {
		return msg[:i+2], msg[i+4:]
	}
	return msg, nil
}

// headerFields splits a header into its fields, each with its folded lines and line ends.
func headerFields(header []byte) []string {
	var fields []string
	for len(header) > 0 {
		end := 0
		for {
			i := bytes.IndexByte(header[end:], '\n')
			if i < 0 {
				end = len(header)
				break
			}
			end += i + 1
			if end == len(header) || header[end] != ' ' && header[end] != '\t' {
				break
			}
		}
		fields = append(fields, string(header[:end]))
		header = header[end:]
	}
	return fields
}

// bodyKey only hashes bodies: the signature bodyHash makes with it is thrown away.
var bodyKey = ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))

// bodyHash is the bh= value of body under relaxed canonicalization and SHA-256 (RFC 6376
// §3.4.4, §3.7), computed by go-msgauth: it signs a message of one field and this body, and
// its bh= is the body's. Done once per post.
func bodyHash(body []byte) (string, error) {
	var buf bytes.Buffer
	opts := &dkim.SignOptions{Domain: "body.invalid", Selector: "x", Signer: bodyKey, Hash: crypto.SHA256,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed, BodyCanonicalization: dkim.CanonicalizationRelaxed,
		HeaderKeys: []string{"From"}}
	msg := append([]byte("From: x\r\n\r\n"), body...)
	if err := dkim.Sign(&buf, bytes.NewReader(msg), opts); err != nil {
		return "", err
	}
	sig := buf.String()[:buf.Len()-len(msg)]
	i := strings.Index(sig, " bh=")
	if i < 0 {
		return "", errors.New("no bh= in the signature")
	}
	bh, _, ok := strings.Cut(sig[i+4:], ";")
	if !ok {
		return "", errors.New("no end to bh= in the signature")
	}
	return bh, nil
}

// signHeader makes the DKIM-Signature field of key k over fields (RFC 6376 §3.5, §3.7): the
// fields named in signedHeaders, bottom-up for a name given more than once, and the
// signature field itself with an empty b=, each in relaxed canonical form (§3.4.2), hashed
// with SHA-256 and signed (RSA PKCS #1 v1.5, RFC 6376 §3.3.1; Ed25519 over the hash, RFC 8463
// §3).
func signHeader(domain string, k *key, fields []string, bh string, now time.Time) (string, error) {
	var f strings.Builder
	f.WriteString("DKIM-Signature: v=1; a=" + k.algo() + "-sha256; c=relaxed/relaxed; d=" + domain + ";\r\n s=" + k.selector +
		"; t=" + strconv.FormatInt(now.Unix(), 10) + ";\r\n h=")
	line := 3
	for i, name := range signedHeaders {
		if i > 0 {
			f.WriteByte(':')
			line++
		}
		if line+len(name) > 76 {
			f.WriteString("\r\n ")
			line = 1
		}
		f.WriteString(name)
		line += len(name)
	}
	f.WriteString(";\r\n bh=" + bh + ";\r\n b=")
	unsigned := f.String()

	// The fields with each signed name, the last one first (RFC 6376 §5.4.2).
	byName := make(map[string][]string, len(signedNames))
	for _, field := range fields {
		name, _, _ := strings.Cut(field, ":")
		name = strings.TrimSpace(name)
		for _, signed := range signedNames {
			if strings.EqualFold(name, signed) {
				byName[signed] = append(byName[signed], field)
				break
			}
		}
	}
	h := sha256.New()
	for _, name := range signedLower {
		list := byName[name]
		if len(list) == 0 {
			continue // an absent field (or one more than there are) is signed as absent
		}
		h.Write([]byte(relaxedHeader(list[len(list)-1])))
		byName[name] = list[:len(list)-1]
	}
	h.Write([]byte(strings.TrimSuffix(relaxedHeader(unsigned), "\r\n")))
	hashed := h.Sum(nil)
	var opts crypto.SignerOpts = crypto.SHA256
	if k.algo() == "ed25519" {
		opts = crypto.Hash(0) // PureEdDSA over the hash (RFC 8463 §3)
	}
	sig, err := k.signer.Sign(rand.Reader, hashed, opts)
	if err != nil {
		return "", err
	}
	b := base64.StdEncoding.EncodeToString(sig)
	var out strings.Builder
	out.WriteString(unsigned)
	for first := true; len(b) > 0; first = false {
		n := min(len(b), 72)
		if !first {
			out.WriteString("\r\n ")
		}
		out.WriteString(b[:n])
		b = b[n:]
	}
	out.WriteString("\r\n")
	return out.String(), nil
}

// relaxedHeader is a field in the relaxed canonical form of RFC 6376 §3.4.2: the name in
// lower case, no space around the colon, the value unfolded with every run of spaces and tabs
// one space and none at its ends, then CRLF.
func relaxedHeader(field string) string {
	name, value, _ := strings.Cut(field, ":")
	var b strings.Builder
	b.Grow(len(field))
	b.WriteString(strings.ToLower(strings.TrimSpace(name)))
	b.WriteByte(':')
	space, wrote := false, false
	for i := 0; i < len(value); i++ {
		switch c := value[i]; c {
		case ' ', '\t', '\r', '\n':
			space = true
		default:
			if space && wrote {
				b.WriteByte(' ')
			}
			space, wrote = false, true
			b.WriteByte(c)
		}
	}
	b.WriteString("\r\n")
	return b.String()
}
