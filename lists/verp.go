package lists

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"strconv"
	"strings"
)

// b32 writes tokens in lowercase base32 without padding, so they survive mail systems that fold
// the case of local parts (docs/design.md).
var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

func encodeToken(b []byte) string { return strings.ToLower(b32.EncodeToString(b)) }

// decodeToken accepts only the one spelling encodeToken gives (up to case): the spare bits
// of the last character must be zero, so no token has a second form.
func decodeToken(s string) ([]byte, bool) {
	b, err := b32.DecodeString(strings.ToUpper(s))
	return b, err == nil && encodeToken(b) == strings.ToLower(s)
}

// mac signs purpose and data with a key derived from the server secret.
func (s *Service) mac(purpose string, data []byte, n int) []byte {
	h := hmac.New(sha256.New, s.secret)
	h.Write([]byte(purpose))
	h.Write([]byte{0})
	h.Write(data)
	return h.Sum(nil)[:n]
}

// listMAC is mac for a token of list, bound to the list's incarnation (store.List): a list
// removed and created again at the same address numbers its members and posts from 1 again,
// and must not honour the tokens mailed for the old one. A list from before incarnations (0)
// keeps the MAC it had, so the links in mail already delivered go on working.
func (s *Service) listMAC(list, purpose string, data []byte, n int) []byte {
	if inc := s.st.Incarnation(list); inc != 0 {
		purpose += "#" + strconv.FormatUint(inc, 16)
	}
	return s.mac(purpose, data, n)
}

// seqToken names a number of list (an archived post, a thread) for one kind of use: the
// number as a varint, so addresses stay short, and a MAC.
func (s *Service) seqToken(list, kind string, n uint64) string {
	data := binary.AppendUvarint(nil, n)
	return encodeToken(append(data, s.listMAC(list, kind+":"+list, data, 6)...))
}

// parseSeqToken returns the number a token names, if the token is genuine for list and kind.
func (s *Service) parseSeqToken(list, kind, token string) (uint64, bool) {
	b, ok := decodeToken(token)
	if !ok || len(b) < 7 {
		return 0, false
	}
	data, sum := b[:len(b)-6], b[len(b)-6:]
	n, k := binary.Uvarint(data)
	if k != len(data) || !hmac.Equal(sum, s.listMAC(list, kind+":"+list, data, 6)) {
		return 0, false
	}
	return n, true
}

// verpToken names a member of a list in the list's bounce address: the member's ID (a varint,
// so the address stays short) and a MAC.
func (s *Service) verpToken(list string, memberID uint64) string {
	return s.seqToken(list, "verp", memberID)
}

// parseVERPToken returns the member ID a bounce token names, if the token is genuine.
func (s *Service) parseVERPToken(list, token string) (uint64, bool) {
	return s.parseSeqToken(list, "verp", token)
}
