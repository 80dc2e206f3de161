"""check_copy.py DUMP DNS_PORT LIST_DOMAIN AUTHSERV [AUTHOR_DOMAIN AUTHOR_ALGO]

A copy smtp-sink dumped, checked with dkimpy, asking the DNS server on 127.0.0.1:DNS_PORT for
the keys. smtp-sink's own lines (X-Client-Addr ... and its Received field) are taken off and LF
becomes CRLF again, which gives back the message crewmail sent. Checks: crewmail's DKIM
signature (d=LIST_DOMAIN) verifies and oversigns From and covers List-Id, so a Subject or
List-Id added on top breaks it. With AUTHOR_DOMAIN: the author's signature verifies too, and
crewmail's Authentication-Results (authserv-id AUTHSERV, exactly one) says dkim=pass for that
domain and algorithm, and dmarc=pass. Prints one line per finding; exit 1 on the first failure.
Run with /usr/bin/python3 (Debian's python3-dkim).
"""
import re, sys
import dkim, dkim.util, dns.resolver

dump, port, list_domain, authserv = sys.argv[1:5]
author = sys.argv[5:7]

def fail(why):
    print("FAIL: " + why)
    sys.exit(1)

lines = open(dump, "rb").read().split(b"\n")
i = 0
while i < len(lines) and re.match(rb"X-(Client-Addr|Client-Proto|Helo-Args|Mail-Args|Rcpt-Args): ", lines[i]):
    i += 1
if i == 0 or not lines[i].startswith(b"Received: "):
    fail("not an smtp-sink dump")
j = i + 1
while j < len(lines) and lines[j][:1] in (b" ", b"\t"):
    j += 1
if b"(smtp-sink)" not in b"".join(lines[i:j]):
    fail("the first Received field is not smtp-sink's")
if lines[-2:] != [b"", b""]:
    fail("the dump does not end with the empty line smtp-sink adds")
msg = b"\r\n".join(lines[j:-1])  # smtp-sink ends a dump with one LF more than it received

header = msg.split(b"\r\n\r\n", 1)[0]
fields = []  # (lowercase name, unfolded value)
for line in header.split(b"\r\n"):
    if line[:1] in (b" ", b"\t") and fields:
        fields[-1] = (fields[-1][0], fields[-1][1] + line)
    else:
        name, _, value = line.partition(b":")
        fields.append((name.strip().lower(), value))

resolver = dns.resolver.Resolver(configure=False)
resolver.nameservers = ["127.0.0.1"]
resolver.port = int(port)
def dnsfunc(name, timeout=5):
    if isinstance(name, bytes):
        name = name.decode()
    try:
        answer = resolver.resolve(name, "TXT", lifetime=timeout)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return None
    return b"".join(answer[0].strings)

def verify(m, idx):
    try:
        return dkim.DKIM(m).verify(idx=idx, dnsfunc=dnsfunc)
    except dkim.DKIMException as e:
        print("  dkimpy: %s" % e)
        return False

sigs = [dkim.util.parse_tag_value(v.replace(b"\r\n", b"").strip()) for n, v in fields if n == b"dkim-signature"]
ours = [k for k, s in enumerate(sigs) if s.get(b"d", b"").lower() == list_domain.encode()]
if len(ours) != 1:
    fail("%d DKIM signatures of %s, expected 1" % (len(ours), list_domain))
k = ours[0]
s = sigs[k]
signed = [h.strip().lower() for h in s.get(b"h", b"").split(b":")]
if not verify(msg, k):
    fail("crewmail's signature (d=%s s=%s a=%s) does not verify" % (list_domain, s.get(b"s", b"").decode(), s.get(b"a", b"").decode()))
print("ok: crewmail's signature verifies (d=%s s=%s a=%s c=%s)" % (list_domain, s[b"s"].decode(), s[b"a"].decode(), s.get(b"c", b"simple/simple").decode()))
if signed.count(b"from") < 2 or b"list-id" not in signed:
    fail("crewmail's signature does not oversign From and cover List-Id: h=%s" % s.get(b"h", b"").decode())
for added in (b"Subject: added later\r\n", b"List-Id: other <other.example.test>\r\n"):
    if verify(added + msg, k):
        fail("crewmail's signature still verifies with %r added on top" % added.strip().decode())
print("ok: a Subject or List-Id added on top breaks crewmail's signature (h=%s)" % s[b"h"].decode())

if author:
    domain, algo = author
    theirs = [k for k, s in enumerate(sigs) if s.get(b"d", b"").lower() == domain.encode() and s.get(b"a") == algo.encode()]
    if len(theirs) != 1:
        fail("%d %s signatures of %s in the copy, expected 1" % (len(theirs), algo, domain))
    if not verify(msg, theirs[0]):
        fail("the author's %s signature (d=%s) does not verify in the copy" % (algo, domain))
    print("ok: the author's %s signature (d=%s) verifies in the copy" % (algo, domain))
    ars = [v.replace(b"\r\n", b"").decode(errors="replace") for n, v in fields if n == b"authentication-results"]
    ours_ar = [a for a in ars if a.split(";", 1)[0].strip() == authserv]
    if len(ours_ar) != 1:
        fail("%d Authentication-Results fields of %s, expected 1: %r" % (len(ours_ar), authserv, ars))
    results = [r.strip() for r in ours_ar[0].split(";")[1:]]
    dkim_pass = [r for r in results if r.startswith("dkim=pass") and re.search(r"\bheader\.d=%s\b" % re.escape(domain), r)
                 and re.search(r"\bheader\.a=%s\b" % re.escape(algo), r)]
    dmarc_pass = [r for r in results if r.startswith("dmarc=pass") and re.search(r"\bheader\.from=%s\b" % re.escape(domain), r)]
    if not dkim_pass or not dmarc_pass:
        fail("Authentication-Results does not say dkim=pass (%s, %s) and dmarc=pass: %s" % (domain, algo, ours_ar[0]))
    print("ok: Authentication-Results: %s" % " ".join(ours_ar[0].split()))
