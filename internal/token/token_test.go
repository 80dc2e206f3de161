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
	f.Fuzz(func(t *testing.T, token string) {
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
