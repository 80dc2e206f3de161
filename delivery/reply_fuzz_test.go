package delivery

import (
	"net/textproto"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"
)

// FuzzServerReply: what a server says before TLS (its greeting, its EHLO reply, its answer to
// STARTTLS) is read here, not by go-smtp: no reply text makes the readers panic, and an
// enhanced status code read from it is always a valid one.
func FuzzServerReply(f *testing.F) {
	f.Add("mx.example.net ESMTP\nPIPELINING\nSTARTTLS\n8BITMIME", 454, "4.7.0 TLS not available due to local problem")
	f.Add("", 421, "4.7.28 rate limited")
	f.Add("x\nstarttls extra", 550, "5.7.708 Access denied")
	f.Add("\n\n", 220, "9.9.9 not a status")
	f.Fuzz(func(t *testing.T, ehlo string, code int, msg string) {
		_ = offers(ehlo, "STARTTLS")
		err := replyError(&textproto.Error{Code: code, Msg: msg})
		se, ok := err.(*smtp.SMTPError)
		if !ok || se.Code != code {
			t.Fatalf("replyError(%d %q) = %v", code, msg, err)
		}
		if ec := se.EnhancedCode; ec != (smtp.EnhancedCode{}) {
			if ec[0] != 2 && ec[0] != 4 && ec[0] != 5 || ec[1] < 0 || ec[1] > 999 || ec[2] < 0 || ec[2] > 999 {
				t.Fatalf("replyError(%q) read the status %v", msg, ec)
			}
			if !strings.HasPrefix(msg, strings.Fields(msg)[0]) {
				t.Fatalf("status not taken from the start of %q", msg)
			}
		}
		_ = Outcome(err)
	})
}
