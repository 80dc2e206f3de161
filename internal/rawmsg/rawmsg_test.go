package rawmsg

import "testing"

func TestReadHeader(t *testing.T) {
	for in, wantFrom := range map[string]string{
		"From: a@x.test\r\n\r\nbody":                "a@x.test",
		"   \r\n\t\r\nFrom: b@x.test\r\n\r\n":       "b@x.test",
		" \r\nFrom: c@x.test\r\nSubject: s\r\n\r\n": "c@x.test",
	} {
		h, err := ReadHeader([]byte(in))
		if err != nil || h.Get("From") != wantFrom {
			t.Errorf("ReadHeader(%q): From %q, %v", in, h.Get("From"), err)
		}
	}
	// A continuation line first is still an error: there is no field to continue.
	if _, err := ReadHeader([]byte(" folded\r\nFrom: d@x.test\r\n\r\n")); err == nil {
		t.Error("a leading continuation line was accepted")
	}
}

func TestParam(t *testing.T) {
	for _, c := range []struct {
		ct     string
		params map[string]string
		name   string
		want   string
	}{
		{`multipart/mixed; boundary="abc"`, map[string]string{"boundary": "abc"}, "boundary", "abc"},
		// Outlook Express: an unquoted boundary with "=" in it does not parse.
		{`multipart/alternative; boundary=----=_NextPart_000_0007_01C1`, nil, "boundary", "----=_NextPart_000_0007_01C1"},
		{`multipart/report; Report-Type=delivery-status; BOUNDARY="x/y"`, nil, "boundary", "x/y"},
		{`multipart/report; report-type=delivery-status; boundary=a/b`, nil, "report-type", "delivery-status"},
		{"multipart/mixed; \xff\xfe boundary=\xffq", nil, "boundary", "\xffq"},
		{`text/plain; charset=utf-8`, nil, "boundary", ""},
	} {
		if got := Param(c.ct, c.params, c.name); got != c.want {
			t.Errorf("Param(%q, %q) = %q, want %q", c.ct, c.name, got, c.want)
		}
	}
}
