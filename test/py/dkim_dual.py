"""dkim_dual.py DUMP DNS_PORT LIST_DOMAIN SELECTOR...

A copy smtp-sink dumped (its own lines taken off, LF made CRLF again), checked with dkimpy,
asking the DNS server on 127.0.0.1:DNS_PORT for the keys: it carries exactly one DKIM signature
of LIST_DOMAIN per SELECTOR, and each verifies on its own, and again with the other signatures
taken off (neither depends on the other). Prints one line per signature; exit 1 on a failure.
With OUTDIR in the environment it writes there the message as crewmail sent it (sent.eml) and,
for each SELECTOR, the message with only that signature (alone-SELECTOR.eml), for other
verifiers.
Run with /usr/bin/python3 (Debian's python3-dkim).
"""
import os, re, sys
import dkim, dkim.util, dns.resolver

dump, port, domain = sys.argv[1:4]
selectors = sys.argv[4:]

def fail(why):
    print("FAIL: " + why)
    sys.exit(1)

lines = open(dump, "rb").read().split(b"\n")
i = 0
while i < len(lines) and re.match(rb"X-[A-Za-z-]+: ", lines[i]):
    i += 1
if not lines[i].startswith(b"Received: "):
    fail("not an smtp-sink dump")
j = i + 1
while j < len(lines) and lines[j][:1] in (b" ", b"\t"):
    j += 1
msg = b"\r\n".join(lines[j:-1])

r = dns.resolver.Resolver(configure=False)
r.nameservers = ["127.0.0.1"]
r.port = int(port)
dnsfunc = lambda name, timeout=5: b"".join(r.resolve(name.decode(), "TXT")[0].strings)

if os.environ.get("OUTDIR"):
    open(os.path.join(os.environ["OUTDIR"], "sent.eml"), "wb").write(msg)
d = dkim.DKIM(msg)
sigs = [(k, v) for k, v in d.headers if k.lower() == b"dkim-signature"]
found = {}
for idx, (_, v) in enumerate(sigs):
    tags = dkim.util.parse_tag_value(v)
    if tags.get(b"d") != domain.encode():
        continue
    found[tags[b"s"].decode()] = (idx, tags[b"a"].decode())
if sorted(found) != sorted(selectors):
    fail("signatures of %s by selector: %s, want %s" % (domain, sorted(found), sorted(selectors)))
head, body = msg.split(b"\r\n\r\n", 1)
for sel in selectors:
    idx, algo = found[sel]
    if not dkim.DKIM(msg).verify(idx=idx, dnsfunc=dnsfunc):
        fail("the %s signature (s=%s) does not verify" % (algo, sel))
    # The message with only this signature: the others taken off (with their folded lines).
    kept, skip, n = [], False, -1
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t"):
            if not skip:
                kept.append(line)
            continue
        skip = False
        if line.lower().startswith(b"dkim-signature:"):
            n += 1
            skip = n != idx
        if not skip:
            kept.append(line)
    alone = b"\r\n".join(kept) + b"\r\n\r\n" + body
    if os.environ.get("OUTDIR"):
        open(os.path.join(os.environ["OUTDIR"], "alone-%s.eml" % sel), "wb").write(alone)
    if not dkim.DKIM(alone).verify(idx=0, dnsfunc=dnsfunc):
        fail("the %s signature (s=%s) does not verify alone" % (algo, sel))
    print("ok: %s signature s=%s d=%s verifies, with the other and alone" % (algo, sel, domain))
bad = msg.replace(b"interop check", b"interop check!", 1)
for sel in selectors:
    if dkim.DKIM(bad).verify(idx=found[sel][0], dnsfunc=dnsfunc):
        fail("the s=%s signature still verifies with the Subject changed" % sel)
print("ok: a changed Subject breaks both")
