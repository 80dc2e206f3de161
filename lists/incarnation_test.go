package lists

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"testing"
	"time"

	"crewmail/internal/token"
)

// TestTokensKeepTheirFormForListsFromBeforeIncarnations: a list from before incarnations (the
// store knows none for it) is signed as before, so the links in mail already delivered keep
// working after an upgrade; a list created now is signed with its incarnation.
func TestTokensKeepTheirFormForListsFromBeforeIncarnations(t *testing.T) {
	s := newTestService(t)
	const legacy, fresh = "old@lists.example.test", "new@lists.example.test"
	if _, err := s.CreateList(fresh, ListOptions{}); err != nil {
		t.Fatal(err)
	}
	expires := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	// The forms every token had before incarnations: a MAC of purpose and data under the
	// server secret.
	mac := func(purpose string, data []byte, n int) []byte {
		h := hmac.New(sha256.New, s.st.Secret())
		h.Write([]byte(purpose))
		h.Write([]byte{0})
		h.Write(data)
		return h.Sum(nil)[:n]
	}
	oneClick := func(list string) string {
		data := append(binary.AppendUvarint(nil, 1), list...)
		return token.Encode(append(data, mac("unsubscribe", data, 10)...))
	}
	seq := func(purpose string) string {
		data := binary.AppendUvarint(nil, 7)
		return token.Encode(append(data, mac(purpose, data, 6)...))
	}
	confirm := func(list string) string {
		data := []byte{actionPending}
		data = binary.BigEndian.AppendUint32(data, uint32(expires.Unix()/3600))
		data = binary.BigEndian.AppendUint64(data, 3)
		return token.Encode(append(data, mac("confirm:"+list, data, 8)...))
	}
	for _, c := range []struct {
		list string
		same bool
	}{{legacy, true}, {fresh, false}} {
		got := []string{s.oneClickToken(c.list, 1), s.seqToken(c.list, "reply", 7), s.seqToken(c.list, "mute", 7), s.verpToken(c.list, 7), s.confirmToken(c.list, actionPending, 3, expires)}
		old := []string{oneClick(c.list), seq("reply:" + c.list), seq("mute:" + c.list), seq("verp:" + c.list), confirm(c.list)}
		for i := range got {
			if (got[i] == old[i]) != c.same {
				t.Errorf("%s: token %d is %q, the old form %q", c.list, i, got[i], old[i])
			}
		}
		if _, id, err := s.parseOneClick(old[0]); (err == nil && id == 1) != c.same {
			t.Errorf("%s: a one-click link of the old form: %v", c.list, err)
		}
	}
}
