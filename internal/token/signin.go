package token

import (
	"crypto/hmac"
	"encoding/binary"
	"time"
)

// Web sign-in links name an address and how long they work, under a MAC. A link mailed on
// request works once (Once: its random ID is recorded when used); the one a digest or notice
// carries works for its member until it expires, as often as she opens it. Expiry is kept to
// the second.

// SignIn is what a sign-in link says.
type SignIn struct {
	Address string
	Expires time.Time
	// ID is random, 8 bytes, for a link that works once; nil for a member's link.
	ID []byte
}

// Once reports whether the link works only once.
func (s SignIn) Once() bool { return len(s.ID) > 0 }

const signInMAC = 16

// SignIn writes a sign-in link's token.
func (s *Signer) SignIn(in SignIn) string {
	data := []byte{byte(len(in.ID))}
	data = append(data, in.ID...)
	data = binary.BigEndian.AppendUint64(data, uint64(in.Expires.Unix()))
	data = append(data, in.Address...)
	return Encode(append(data, s.mac("web-signin", data, signInMAC)...))
}

// ParseSignIn reads a sign-in link's token: ErrInvalid for one that is not genuine, ErrExpired
// for one that was but expired before now (with what it says).
func (s *Signer) ParseSignIn(tok string, now time.Time) (SignIn, error) {
	b, ok := Decode(tok)
	if !ok || len(b) < 1+8+signInMAC {
		return SignIn{}, ErrInvalid
	}
	data, sum := b[:len(b)-signInMAC], b[len(b)-signInMAC:]
	if !hmac.Equal(sum, s.mac("web-signin", data, signInMAC)) {
		return SignIn{}, ErrInvalid
	}
	n := int(data[0])
	if len(data) < 1+n+8+1 {
		return SignIn{}, ErrInvalid
	}
	in := SignIn{ID: data[1 : 1+n], Expires: time.Unix(int64(binary.BigEndian.Uint64(data[1+n:])), 0).UTC(), Address: string(data[1+n+8:])}
	if n == 0 {
		in.ID = nil
	}
	if now.After(in.Expires) {
		return in, ErrExpired
	}
	return in, nil
}
