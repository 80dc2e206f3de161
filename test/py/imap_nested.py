"""imap_nested.py PORT USER PASSWORD MAILBOX MESSAGE-ID...

FETCH BODYSTRUCTURE of each message and SEARCH TEXT help, each within 10 s; the structure is no
deeper than the limit and ends in an application/octet-stream part; the text beyond the limit
is not found.
"""
import imaplib, sys, time

port, user, password, box = sys.argv[1:5]
ids = sys.argv[5:]

def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)

def timed(what, f, *args):
    start = time.monotonic()
    typ, data = f(*args)
    took = time.monotonic() - start
    if typ != "OK":
        fail("%s: %s %r" % (what, typ, data))
    if took > 10:
        fail("%s took %.1f s, expected under 10 s" % (what, took))
    return data, took

try:
    m = imaplib.IMAP4("127.0.0.1", int(port), timeout=60)
    m.login(user, password)
    typ, data = m.select(box, readonly=True)
    if typ != "OK":
        fail("EXAMINE %s: %s %r" % (box, typ, data))
    seqs = []
    for msgid in ids:
        data, _ = timed("SEARCH HEADER Message-ID", m.search, None, "HEADER", "Message-ID", msgid)
        found = data[0].split()
        if len(found) != 1:
            fail("SEARCH HEADER Message-ID %s: %r, expected one message" % (msgid, data))
        seq = found[0].decode()
        seqs.append(seq)
        data, took = timed("FETCH %s (BODYSTRUCTURE)" % seq, m.fetch, seq, "(BODYSTRUCTURE)")
        resp = b"".join(d if isinstance(d, bytes) else b"".join(d) for d in data)
        depth = deepest = 0
        for c in resp:
            depth += c == ord("(")
            depth -= c == ord(")")
            deepest = max(deepest, depth)
        if b'"application" "octet-stream"' not in resp.lower() or deepest > 200:
            fail("FETCH %s (BODYSTRUCTURE): %d bytes, %d levels of parentheses, no flat part: %r..."
                 % (seq, len(resp), deepest, resp[:300]))
        print("ok: FETCH %s (BODYSTRUCTURE) of %s in %.2f s: %d bytes, %d levels, one flat part at the limit"
              % (seq, msgid, took, len(resp), deepest))
    data, took = timed("SEARCH TEXT help", m.search, None, "TEXT", "help")
    hits = [s.decode() for s in data[0].split()]
    if set(hits) & set(seqs):
        fail("SEARCH TEXT help found %r: the text beyond the nesting limit was searched" % hits)
    print("ok: SEARCH TEXT help in %.2f s: %r, none of the nested posts" % (took, hits))
    typ, data = m.noop()
    if typ != "OK":
        fail("NOOP: %s %r" % (typ, data))
    m.logout()
except (imaplib.IMAP4.error, OSError) as e:
    fail("%s: %s" % (type(e).__name__, e))
