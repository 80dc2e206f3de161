package verify

import (
	"strings"
	"testing"
)

// receivedSeeds are Received fields as Postfix, Exim and crewmail write them.
var receivedSeeds = []struct {
	name, value string
	ip, helo    string
}{
	{"postfix", " from mail.example.com (mail.example.com [192.0.2.1])\r\n\tby mx.example.org (Postfix) with ESMTPS id 4Xyz; Fri, 4 Dec 2026 10:00:00 +0000 (UTC)\r\n", "192.0.2.1", "mail.example.com"},
	{"postfix-unknown", " from helo.example.com (unknown [198.51.100.7])\r\n\tby mx.example.org (Postfix) with ESMTP id 1; Fri, 4 Dec 2026 10:00:00 +0000\r\n", "198.51.100.7", "helo.example.com"},
	{"postfix-ipv6", " from helo.example.com (rdns.example.com [IPv6:2001:db8::25])\r\n\tby mx.example.org (Postfix) with ESMTPS id 2 for <crew@lists.example.org>; Fri, 4 Dec 2026 10:00:00 +0000\r\n", "2001:db8::25", "helo.example.com"},
	{"exim", " from rdns.example.com ([192.0.2.9] helo=helo.example.com)\r\n\tby mx.example.org with esmtps (TLS1.3) (Exim 4.96)\r\n\t(envelope-from <a@example.com>)\r\n\tid 1rA-000; Fri, 04 Dec 2026 10:00:00 +0000\r\n", "192.0.2.9", "helo.example.com"},
	{"exim-no-rdns", " from [192.0.2.10] (helo=helo.example.com)\r\n\tby mx.example.org with esmtp (Exim 4.96)\r\n\tid 1rB-000; Fri, 04 Dec 2026 10:00:00 +0000\r\n", "192.0.2.10", "helo.example.com"},
	{"exim-same", " from mail.example.com ([192.0.2.11]:45678)\r\n\tby mx.example.org with esmtp (Exim 4.96) id 1rC-000; Fri, 04 Dec 2026 10:00:00 +0000\r\n", "192.0.2.11", "mail.example.com"},
	{"crewmail", " from mail.example.com ([192.0.2.12])\r\n\tby lists.example.org (crewmail) with ESMTP id 0a1b2c.1\r\n\tfor <crew@lists.example.org>;\r\n\tFri, 04 Dec 2026 10:00:00 +0000\r\n", "192.0.2.12", "mail.example.com"},
	{"crewmail-ipv6", " from mail.example.com ([IPv6:2001:db8::1])\r\n\tby lists.example.org (crewmail) with ESMTPS id 0a1b2c.1;\r\n\tFri, 04 Dec 2026 10:00:00 +0000\r\n", "2001:db8::1", "mail.example.com"},
}

func TestParseReceived(t *testing.T) {
	for _, c := range receivedSeeds {
		hop, ok := ParseReceived(c.value)
		if !ok || hop.IP.String() != c.ip || hop.Helo != c.helo || hop.By != "mx.example.org" && hop.By != "lists.example.org" {
			t.Errorf("%s: got %+v %v, want ip %s helo %s", c.name, hop, ok, c.ip, c.helo)
		}
	}
	for _, bad := range []string{"", "by mx.example.org with local id 1", "from localhost by mx (Postfix) with local id 9", "from x ([not an ip]) by y", "from x (y [300.1.1.1]) by z"} {
		if hop, ok := ParseReceived(bad); ok {
			t.Errorf("%q: read %+v", bad, hop)
		}
	}
}

func TestTopReceived(t *testing.T) {
	msg := "Return-Path: <a@example.com>\r\nReceived: from a ([192.0.2.1]) by b;\r\n d\r\nReceived: from old ([192.0.2.2]) by c; d\r\n\r\nReceived: in the body\r\n"
	v, ok := TopReceived([]byte(msg))
	if hop, _ := ParseReceived(v); !ok || hop.IP.String() != "192.0.2.1" {
		t.Errorf("top Received: %q", v)
	}
	if _, ok := TopReceived([]byte("From: a@example.com\r\n\r\nReceived: from a ([192.0.2.1]) by b\r\n")); ok {
		t.Error("a Received line in the body was read")
	}
}

func TestFilterResults(t *testing.T) {
	msg := "Authentication-Results: mx.example.org;\r\n dkim=pass header.d=example.com\r\nAuthentication-Results: lists.example.org; dmarc=pass\r\nAuthentication-Results: (c) evil.example; spf=pass\r\nSubject: x\r\n\r\nAuthentication-Results: mx.example.org; body\r\n"
	out, kept := FilterResults([]byte(msg), func(id string) bool { return id == "mx.example.org" })
	if string(out) != "Authentication-Results: mx.example.org;\r\n dkim=pass header.d=example.com\r\nSubject: x\r\n\r\nAuthentication-Results: mx.example.org; body\r\n" {
		t.Errorf("kept:\n%s", out)
	}
	if len(kept) != 1 || kept[0] != "mx.example.org; dkim=pass header.d=example.com" {
		t.Errorf("evidence: %q", kept)
	}
}

func FuzzParseReceived(f *testing.F) {
	for _, c := range receivedSeeds {
		f.Add(c.value)
	}
	f.Fuzz(func(t *testing.T, v string) {
		hop, ok := ParseReceived(v)
		if !ok {
			return
		}
		if hop.IP == nil {
			t.Fatalf("ok without an address: %q", v)
		}
		if strings.ContainsAny(hop.Helo, " \t\r\n") {
			t.Fatalf("HELO %q holds white space", hop.Helo)
		}
	})
}
