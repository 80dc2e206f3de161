package replytext

import (
	"strings"
	"testing"
)

func TestSplitKeepsOwnTextAndQuotesApart(t *testing.T) {
	msg := "From: a@x.test\r\nSubject: Re: picnic\r\nContent-Type: text/plain\r\n\r\n" +
		"Saturday suits me.\r\n\r\nOn Monday, Bob wrote:\r\n> Shall we meet at the lake?\r\n> Bring bread.\r\n\r\n-- \r\nAnn\r\n"
	own, rest, files, err := Split([]byte(msg))
	if err != nil {
		t.Fatal(err)
	}
	if own != "Saturday suits me." {
		t.Errorf("own = %q", own)
	}
	for _, want := range []string{"> Shall we meet at the lake?", "> Bring bread.", "On Monday, Bob wrote:", "Ann"} {
		if !strings.Contains(rest, want) {
			t.Errorf("rest %q lacks %q", rest, want)
		}
	}
	if strings.Contains(rest, "Saturday") {
		t.Errorf("rest %q has the own text", rest)
	}
	if len(files) != 0 {
		t.Errorf("files = %v", files)
	}
}
