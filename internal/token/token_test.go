package token

import (
	"strings"
	"testing"
	"time"
)

// The seed corpora are in testdata/fuzz; "go test" runs them, "scripts/fuzz" or
// "go test -fuzz=FuzzX ./internal/token" explores further.

var (
	signer = NewSigner([]byte("a server secret of thirty-two by"))
	crew   = List{Address: "crew@x.test"}
	now    = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
)

func incarnation(string) uint64 { return 0 }

// FuzzTokens: a token is accepted only in the one spelling (up to case) the signer makes for
// what it names; anything else, however close, is refused.
func FuzzTokens(f *testing.F) {
	genuine := signer.Confirm(crew, 1, 7, now.Add(7*24*time.Hour))
	f.Add(genuine)
	f.Add(signer.Seq(crew, VERP, 300))
	f.Add(signer.OneClick(crew, 300))
	f.Add(signer.SignIn(SignIn{Address: "a@x.test", Expires: now.Add(time.Hour), ID: []byte("12345678")}))
	f.Fuzz(func(t *testing.T, token string) {
		if in, err := signer.ParseSignIn(token, now); err == nil && signer.SignIn(in) != strings.ToLower(token) {
			t.Errorf("sign-in token %q accepted but is not the one for %+v", token, in)
		}
		if list, id, ok := signer.ParseOneClick(token, incarnation); ok && signer.OneClick(List{Address: list}, id) != strings.ToLower(token) {
			t.Errorf("one-click token %q accepted but is not the one for member %d of %s", token, id, list)
		}
		if _, id, err := signer.ParseConfirm(crew, token, now); err == nil && strings.ToLower(token) != genuine {
			t.Errorf("forged confirmation %q accepted (member %d)", token, id)
		}
		if id, ok := signer.ParseSeq(crew, VERP, token); ok && signer.Seq(crew, VERP, id) != strings.ToLower(token) {
			t.Errorf("VERP token %q accepted but is not the one for member %d", token, id)
		}
	})
}

// TestTokensAreBoundToPurposeListAndIncarnation: a token does what it was made for, for the
// list it was made for, and for no other purpose, list or incarnation of that list.
func TestTokensAreBoundToPurposeListAndIncarnation(t *testing.T) {
	again := List{Address: crew.Address, Incarnation: 2}
	other := List{Address: "seeds@x.test"}
	reply := signer.Seq(crew, Reply, 42)
	if n, ok := signer.ParseSeq(crew, Reply, strings.ToUpper(reply)); !ok || n != 42 {
		t.Errorf("Reply token read back as %d, %v", n, ok)
	}
	for _, tc := range []struct {
		what string
		l    List
		p    Purpose
	}{{"as a mute token", crew, Mute}, {"for another list", other, Reply}, {"for the list created again", again, Reply}} {
		if _, ok := signer.ParseSeq(tc.l, tc.p, reply); ok {
			t.Errorf("a Reply token was accepted %s", tc.what)
		}
	}
	link := signer.OneClick(again, 9)
	if _, _, ok := signer.ParseOneClick(link, incarnation); ok {
		t.Error("a one-click link of the list created again was accepted for the old list")
	}
	if l, id, ok := signer.ParseOneClick(link, func(string) uint64 { return 2 }); !ok || l != crew.Address || id != 9 {
		t.Errorf("one-click link read back as %s %d %v", l, id, ok)
	}
	c := signer.Confirm(crew, 3, 11, now.Add(time.Hour))
	if a, id, err := signer.ParseConfirm(crew, c, now); err != nil || a != 3 || id != 11 {
		t.Errorf("confirmation read back as %d %d %v", a, id, err)
	}
	if _, _, err := signer.ParseConfirm(crew, c, now.Add(2*time.Hour)); err != ErrExpired {
		t.Errorf("an expired confirmation: %v", err)
	}
	if _, _, err := signer.ParseConfirm(other, c, now); err != ErrInvalid {
		t.Errorf("a confirmation for another list: %v", err)
	}
}

// TestDecodeOneSpelling: a token has one spelling up to case; a second one for the same bytes
// (spare bits set in the last character) is refused.
func TestDecodeOneSpelling(t *testing.T) {
	tok := Encode([]byte{0xff})
	if b, ok := Decode(strings.ToUpper(tok)); !ok || len(b) != 1 || b[0] != 0xff {
		t.Errorf("Decode(%q) = %v, %v", tok, b, ok)
	}
	if _, ok := Decode("77"); ok {
		t.Error("a second spelling of 0xff was accepted")
	}
}

func TestSignIn(t *testing.T) {
	s := NewSigner([]byte("secret"))
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	once := SignIn{Address: "a@x.test", Expires: now.Add(15 * time.Minute), ID: []byte("12345678")}
	tok := s.SignIn(once)
	got, err := s.ParseSignIn(tok, now)
	if err != nil || got.Address != "a@x.test" || !got.Once() || string(got.ID) != "12345678" || !got.Expires.Equal(once.Expires) {
		t.Errorf("single-use link: %+v %v", got, err)
	}
	if _, err := s.ParseSignIn(tok, now.Add(16*time.Minute)); err != ErrExpired {
		t.Errorf("16 minutes later: %v, want ErrExpired", err)
	}
	member := s.SignIn(SignIn{Address: "b@x.test", Expires: now.Add(7 * 24 * time.Hour)})
	if got, err := s.ParseSignIn(member, now.Add(6*24*time.Hour)); err != nil || got.Once() || got.Address != "b@x.test" {
		t.Errorf("member's link: %+v %v", got, err)
	}
	if _, err := NewSigner([]byte("other")).ParseSignIn(tok, now); err != ErrInvalid {
		t.Errorf("another server's link: %v", err)
	}
	// Another address under the same MAC is refused.
	b, _ := Decode(tok)
	b[len(b)-signInMAC-1] ^= 1
	if _, err := s.ParseSignIn(Encode(b), now); err != ErrInvalid {
		t.Errorf("an address changed: %v", err)
	}
	for _, bad := range []string{"", "aa", "a1", tok[:10]} {
		if _, err := s.ParseSignIn(bad, now); err != ErrInvalid {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// FuzzPrivateReply: a private reply token is accepted only in the one spelling the signer makes
// for its post and expiry, for its list; anything else, however close, is refused.
func FuzzPrivateReply(f *testing.F) {
	expires := now.Add(30 * 24 * time.Hour)
	f.Add(signer.PrivateReply(crew, 42, expires))
	f.Add(signer.PrivateReply(crew, 1<<40, expires))
	f.Add(signer.Seq(crew, Reply, 42))
	f.Fuzz(func(t *testing.T, token string) {
		seq, err := signer.ParsePrivateReply(crew, token, now)
		if err == nil && signer.PrivateReply(crew, seq, expires) != strings.ToLower(token) {
			t.Errorf("private reply token %q accepted for post %d but is not the one made for it", token, seq)
		}
		if _, err := signer.ParsePrivateReply(List{Address: "seeds@x.test"}, token, now); err == nil {
			t.Errorf("private reply token %q of crew accepted for another list", token)
		}
	})
}

// TestPrivateReplyToken: a private reply token names its post until it expires, for its list
// and incarnation only, and is no Reply token.
func TestPrivateReplyToken(t *testing.T) {
	tok := signer.PrivateReply(crew, 42, now.Add(time.Hour))
	if seq, err := signer.ParsePrivateReply(crew, strings.ToUpper(tok), now); err != nil || seq != 42 {
		t.Errorf("private reply token read back as %d, %v", seq, err)
	}
	if _, err := signer.ParsePrivateReply(crew, tok, now.Add(2*time.Hour)); err != ErrExpired {
		t.Errorf("an expired private reply token: %v", err)
	}
	for _, l := range []List{{Address: "seeds@x.test"}, {Address: crew.Address, Incarnation: 2}} {
		if _, err := signer.ParsePrivateReply(l, tok, now); err != ErrInvalid {
			t.Errorf("a private reply token of crew for %+v: %v", l, err)
		}
	}
	if _, ok := signer.ParseSeq(crew, Reply, tok); ok {
		t.Error("a private reply token was accepted as a Reply token")
	}
	if _, err := signer.ParsePrivateReply(crew, signer.Seq(crew, Reply, 42), now); err != ErrInvalid {
		t.Errorf("a Reply token was accepted as a private reply token: %v", err)
	}
	if n := len("crew+p-" + tok); n > 64 {
		t.Errorf("crew+p-TOKEN is %d characters; RFC 5321 §4.5.3.1.1 allows a local part 64", n)
	}
}
