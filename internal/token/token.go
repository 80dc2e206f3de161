// Package token owns the signed tokens in the addresses and links that act for someone: the
// VERP bounce address, Reply, private reply and mute addresses, confirmation addresses and
// one-click unsubscribe links. Each is HMAC-signed with the server secret, bound to its
// purpose and its list (the incarnation of the list at that address), and written in
// lowercase base32 with one spelling only, so it survives mail systems that fold the case of
// local parts (docs/design.md, "Tokens").
package token

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"strconv"
	"strings"
	"time"
)

// b32 writes tokens in lowercase base32 without padding, so they survive mail systems that fold
// the case of local parts (docs/design.md).
var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// Encode writes b as a token: lowercase base32 without padding.
func Encode(b []byte) string { return strings.ToLower(b32.EncodeToString(b)) }

// Decode accepts only the one spelling Encode gives (up to case): the spare bits of the last
// character must be zero, so no token has a second form.
func Decode(s string) ([]byte, bool) {
	b, err := b32.DecodeString(strings.ToUpper(s))
	return b, err == nil && Encode(b) == strings.ToLower(s)
}

// Signer makes and checks tokens with the server secret.
type Signer struct {
	secret []byte
}

// NewSigner returns a Signer for the server secret.
func NewSigner(secret []byte) *Signer { return &Signer{secret: secret} }

// List is the list a token belongs to: its address and its incarnation (store.List). A list
// removed and created again at the same address numbers its members and posts from 1 again,
// and must not honour the tokens mailed for the old one.
type List struct {
	Address     string
	Incarnation uint64 // 0: a list from before incarnations
}

// mac signs purpose and data with a key derived from the server secret.
func (s *Signer) mac(purpose string, data []byte, n int) []byte {
	h := hmac.New(sha256.New, s.secret)
	h.Write([]byte(purpose))
	h.Write([]byte{0})
	h.Write(data)
	return h.Sum(nil)[:n]
}

// listMAC is mac for a token of list, bound to the list's incarnation. A list from before
// incarnations (0) keeps the MAC it had, so the links in mail already delivered go on working.
func (s *Signer) listMAC(l List, purpose string, data []byte, n int) []byte {
	if l.Incarnation != 0 {
		purpose += "#" + strconv.FormatUint(l.Incarnation, 16)
	}
	return s.mac(purpose, data, n)
}

// Purpose is what a number token (Seq) is for; a token made for one is no good for another.
type Purpose string

// The purposes of number tokens.
const (
	VERP  Purpose = "verp"  // a member's ID, in the list's bounce address
	Reply Purpose = "reply" // an archived post's number, in a Reply address
	Mute  Purpose = "mute"  // a thread's number, in a mute or unmute address
	// Digest is a random number in a digest's Message-ID, so that a reply naming the digest
	// is known for one whatever address it was sent to.
	Digest Purpose = "digest"
)

// Seq names a number of list (a member, an archived post, a thread) for one purpose: the number
// as a varint, so addresses stay short, and a MAC.
func (s *Signer) Seq(l List, p Purpose, n uint64) string {
	data := binary.AppendUvarint(nil, n)
	return Encode(append(data, s.listMAC(l, string(p)+":"+l.Address, data, 6)...))
}

// ParseSeq returns the number a token names, if the token is genuine for list and purpose.
func (s *Signer) ParseSeq(l List, p Purpose, token string) (uint64, bool) {
	b, ok := Decode(token)
	if !ok || len(b) < 7 {
		return 0, false
	}
	data, sum := b[:len(b)-6], b[len(b)-6:]
	n, k := binary.Uvarint(data)
	if k != len(data) || !hmac.Equal(sum, s.listMAC(l, string(p)+":"+l.Address, data, 6)) {
		return 0, false
	}
	return n, true
}

// One-click unsubscribe (RFC 8058): every copy of a post carries a link naming its member. The
// token holds the member's ID, the list's address and a MAC of both, so the link needs no
// lookup table and cannot be guessed or turned to another member or list.

// OneClick names a member of a list in its one-click unsubscribe link.
func (s *Signer) OneClick(l List, memberID uint64) string {
	data := append(binary.AppendUvarint(nil, memberID), l.Address...)
	return Encode(append(data, s.listMAC(l, "unsubscribe", data, 10)...))
}

// ParseOneClick returns the list and member a one-click token names, if it is genuine;
// incarnation gives the incarnation of the list the token names.
func (s *Signer) ParseOneClick(token string, incarnation func(list string) uint64) (list string, memberID uint64, ok bool) {
	b, ok := Decode(token)
	if !ok {
		return "", 0, false
	}
	id, n := binary.Uvarint(b)
	if n <= 0 || len(b) < n+10 {
		return "", 0, false
	}
	data, sum := b[:len(b)-10], b[len(b)-10:]
	list = string(data[n:])
	if !hmac.Equal(sum, s.listMAC(List{Address: list, Incarnation: incarnation(list)}, "unsubscribe", data, 10)) {
		return "", 0, false
	}
	return list, id, true
}

// Errors of ParseConfirm.
var (
	ErrInvalid = errors.New("not a genuine token")
	ErrExpired = errors.New("expired token")
)

// Confirm names what a confirmation confirms until expires: an action (what the ID is, the
// caller's to say) and an ID. The action and the list are under the MAC, so a token for one
// thing never does another. Expiry is kept to the hour.
func (s *Signer) Confirm(l List, action byte, id uint64, expires time.Time) string {
	data := []byte{action}
	data = binary.BigEndian.AppendUint32(data, uint32(expires.Unix()/3600))
	data = binary.BigEndian.AppendUint64(data, id)
	return Encode(append(data, s.listMAC(l, "confirm:"+l.Address, data, 8)...))
}

// ParseConfirm returns the action and ID a confirmation token names: ErrInvalid for a token that
// is not genuine for list, ErrExpired for one that was but expired before now.
func (s *Signer) ParseConfirm(l List, token string, now time.Time) (action byte, id uint64, err error) {
	b, ok := Decode(token)
	if !ok || len(b) != 21 || !hmac.Equal(b[13:], s.listMAC(l, "confirm:"+l.Address, b[:13], 8)) {
		return 0, 0, ErrInvalid
	}
	if expires := time.Unix(int64(binary.BigEndian.Uint32(b[1:5]))*3600, 0); now.After(expires) {
		return 0, 0, ErrExpired
	}
	return b[0], binary.BigEndian.Uint64(b[5:13]), nil
}

// A private reply address (crew+p-TOKEN@) forwards a member's answer to the author of one
// archived post, and to nobody else. The token names the post (its sequence in the list's
// archive) and when the address stops working, under a MAC bound to the list's incarnation.
// It does not name a member: digests are composed once for every member with the same
// cursor, so the relay asks instead that whoever mails it is a member of the list
// (docs/design.md, "Addresses of a list").

// PrivateReply names archived post seq of list until expires (kept to the hour).
func (s *Signer) PrivateReply(l List, seq uint64, expires time.Time) string {
	data := binary.AppendUvarint(nil, seq)
	data = binary.BigEndian.AppendUint32(data, uint32(expires.Unix()/3600))
	return Encode(append(data, s.listMAC(l, "private:"+l.Address, data, 8)...))
}

// ParsePrivateReply returns the archived post a private reply token names: ErrInvalid for a
// token that is not genuine for list, ErrExpired for one that was but expired before now.
func (s *Signer) ParsePrivateReply(l List, token string, now time.Time) (seq uint64, err error) {
	b, ok := Decode(token)
	if !ok || len(b) < 1+4+8 {
		return 0, ErrInvalid
	}
	data, sum := b[:len(b)-8], b[len(b)-8:]
	seq, k := binary.Uvarint(data[:len(data)-4])
	if k != len(data)-4 || !hmac.Equal(sum, s.listMAC(l, "private:"+l.Address, data, 8)) {
		return 0, ErrInvalid
	}
	if expires := time.Unix(int64(binary.BigEndian.Uint32(data[len(data)-4:]))*3600, 0); now.After(expires) {
		return 0, ErrExpired
	}
	return seq, nil
}
