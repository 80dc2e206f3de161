package imapd

import (
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-sasl"

	"crewmail/store"
)

// TestMemberWithInternationalDomainLogsInUnderEitherForm: a member who joined as
// Jürgen@Bücher.example is kept under the normal form, the domain in IDNA A-labels (RFC 5891);
// the mail client may be set up with the domain as the member writes it or as DNS spells it,
// in any case, and the login works both ways.
func TestMemberWithInternationalDomainLogsInUnderEitherForm(t *testing.T) {
	const stored = "jürgen@xn--bcher-kva.example" // what joining as Jürgen@Bücher.example stores
	const pw = "j8rg-3nbu-ch3r-0000"
	e := newEnv(t)
	e.update(t, func(tx store.Tx) error {
		_, err := tx.AddMember(crew, store.Member{Address: stored, Mode: "each", Added: created.Add(time.Hour)})
		return err
	})
	e.setPassword(t, stored, pw)
	for _, user := range []string{
		"jürgen@bücher.example",
		"Jürgen@Bücher.example",
		"JÜRGEN@BÜCHER.EXAMPLE",
		"jürgen@xn--bcher-kva.example",
		"Jürgen@XN--BCHER-KVA.example",
	} {
		c := e.dial(t, nil)
		if err := c.Login(user, pw).Wait(); err != nil {
			t.Errorf("LOGIN %s: %v", user, err)
			continue
		}
		if got := listNames(t, c); len(got) != 1 || got[0] != crewBox {
			t.Errorf("LIST after LOGIN %s: %v, want [%s]", user, got, crewBox)
		}
		c = e.dial(t, nil)
		if err := c.Authenticate(sasl.NewPlainClient("", user, pw)); err != nil {
			t.Errorf("AUTHENTICATE PLAIN %s: %v", user, err)
		}
	}
	// The other forms are the same account, not a way around its password.
	c := e.dial(t, nil)
	wantNo(t, "LOGIN with a wrong password", c.Login("jürgen@bücher.example", passwords[alice]).Wait(), imap.ResponseCodeAuthenticationFailed)
}
