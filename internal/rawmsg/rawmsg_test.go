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
