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
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-msgauth/dkim"
)

// DKIM keys live in the data folder, one per domain: dkim/DOMAIN.pem, a PKCS #8 private key
// whose PEM header "Selector" names the DNS record it is published under.

// KeyFile is where the key of domain is kept under dir (the data folder's dkim/).
func KeyFile(dir, domain string) string {
	return filepath.Join(dir, strings.ToLower(domain)+".pem")
}

// GenerateKey makes a new DKIM key for domain ("rsa" for RSA-2048, or "ed25519"), writes it
// under dir, and returns the DNS record to publish: its name and its TXT value. An existing key
// is never overwritten: mail signed with it may still be in flight.
func GenerateKey(dir, domain, selector, algo string) (name, value string, err error) {
	if selector == "" || strings.ContainsAny(selector, " ./\\@") {
		return "", "", fmt.Errorf("selector %q is not a DNS label", selector)
	}
	var signer crypto.Signer
	var keyType string
	switch algo {
	case "rsa":
		if signer, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			return "", "", err
		}
		keyType = "rsa"
	case "ed25519":
		if _, signer, err = ed25519.GenerateKey(rand.Reader); err != nil {
			return "", "", err
		}
		keyType = "ed25519"
	default:
		return "", "", fmt.Errorf("algorithm must be rsa or ed25519, not %q", algo)
	}
	der, err := x509.MarshalPKCS8PrivateKey(signer)
	if err != nil {
		return "", "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", err
	}
	path := KeyFile(dir, domain)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return "", "", fmt.Errorf("%s already has a DKIM key (%s); remove it first to make a new one", domain, path)
	}
	if err != nil {
		return "", "", err
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
		return "", "", err
	}
	return selector + "._domainkey." + strings.ToLower(domain), dnsRecord(keyType, signer.Public()), nil
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

// RecordOf returns the DNS record for the key of domain under dir.
func RecordOf(dir, domain string) (name, value string, err error) {
	k, err := loadKey(KeyFile(dir, domain))
	if err != nil {
		return "", "", err
	}
	keyType := "rsa"
	if _, ok := k.signer.Public().(ed25519.PublicKey); ok {
		keyType = "ed25519"
	}
	return k.selector + "._domainkey." + strings.ToLower(domain), dnsRecord(keyType, k.signer.Public()), nil
}

type key struct {
	selector string
	signer   crypto.Signer
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

// Signer adds a DKIM signature (relaxed/relaxed, RFC 6376) with the key of the list's domain to
// everything crewmail sends. A message identical for every member (a post's list copy, today)
// is hashed and signed once: the signature is kept for the next member's copy.
type Signer struct {
	dir string
	Now func() time.Time

	mu    sync.Mutex
	keys  map[string]*key      // by domain; nil: no key (checked at most once a minute)
	miss  map[string]time.Time // domains without a key, and when that was seen
	cache map[[32]byte]string  // message digest → DKIM-Signature field
	order [][32]byte
}

// NewSigner signs with the keys under dir (the data folder's dkim/). Keys made while the
// server runs are picked up within a minute.
func NewSigner(dir string) *Signer {
	return &Signer{dir: dir, Now: time.Now, keys: map[string]*key{}, miss: map[string]time.Time{}, cache: map[[32]byte]string{}}
}

const signCacheSize = 256

func (s *Signer) keyFor(domain string) (*key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k, ok := s.keys[domain]; ok {
		return k, nil
	}
	if seen, ok := s.miss[domain]; ok && s.Now().Sub(seen) < time.Minute {
		return nil, nil
	}
	k, err := loadKey(KeyFile(s.dir, domain))
	if errors.Is(err, fs.ErrNotExist) {
		s.miss[domain] = s.Now()
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	delete(s.miss, domain)
	s.keys[domain] = k
	return k, nil
}

// Sign returns msg with a DKIM-Signature field for domain on top, or msg unchanged when
// domain has no key.
func (s *Signer) Sign(domain string, msg []byte) ([]byte, error) {
	k, err := s.keyFor(strings.ToLower(domain))
	if err != nil || k == nil {
		return msg, err
	}
	h := sha256.New()
	h.Write([]byte(domain + "\x00"))
	h.Write(msg)
	var digest [32]byte
	h.Sum(digest[:0])
	s.mu.Lock()
	field, ok := s.cache[digest]
	s.mu.Unlock()
	if !ok {
		var buf bytes.Buffer
		opts := &dkim.SignOptions{
			Domain: domain, Selector: k.selector, Signer: k.signer, Hash: crypto.SHA256,
			HeaderCanonicalization: dkim.CanonicalizationRelaxed, BodyCanonicalization: dkim.CanonicalizationRelaxed,
			HeaderKeys: signedHeaders,
		}
		if err := dkim.Sign(&buf, bytes.NewReader(msg), opts); err != nil {
			return nil, fmt.Errorf("DKIM sign for %s: %w", domain, err)
		}
		// dkim.Sign writes the field and then the message: keep only the field.
		field = buf.String()[:buf.Len()-len(msg)]
		s.mu.Lock()
		if _, dup := s.cache[digest]; !dup {
			if len(s.order) >= signCacheSize {
				delete(s.cache, s.order[0])
				s.order = s.order[1:]
			}
			s.cache[digest] = field
			s.order = append(s.order, digest)
		}
		s.mu.Unlock()
	}
	out := make([]byte, 0, len(field)+len(msg))
	return append(append(out, field...), msg...), nil
}
