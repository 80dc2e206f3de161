"""imap_check.py PORT USER PASSWORD MAILBOX COUNT FIRST_MESSAGE_FILE

Python's imaplib (stdlib), as a mail program's IMAP code would: LOGIN, LIST, EXAMINE, SEARCH
ALL, FETCH 1 BODY.PEEK[] (the first archived message's bytes), STORE refused after EXAMINE,
SELECT, STORE +FLAGS (\\Seen), FLAGS kept for a second session, APPEND refused with NO [CANNOT],
LOGOUT. Prints one line per finding; exit 1 on the first failure.
"""
import imaplib, re, sys

port, user, password, box, count, first = sys.argv[1:7]
count, want = int(count), open(first, "rb").read()

def fail(why):
    print("FAIL: " + why)
    sys.exit(1)

def connect():
    try:
        m = imaplib.IMAP4("127.0.0.1", int(port), timeout=30)
    except OSError as e:
        fail("cannot connect to 127.0.0.1:%s: %s" % (port, e))
    try:
        typ, data = m.login(user, password)
    except m.error as e:
        fail("LOGIN as %s refused: %s" % (user, e))
    return m, data

def flags_of(m, n):
    typ, data = m.fetch(str(n), "(FLAGS)")
    if typ != "OK" or not data or not isinstance(data[0], bytes):
        fail("FETCH %d (FLAGS): %s %r" % (n, typ, data))
    found = re.search(rb"FLAGS \(([^)]*)\)", data[0])
    if not found:
        fail("FETCH %d (FLAGS): no FLAGS in %r" % (n, data[0]))
    return found.group(1).decode().split()

try:
    m, data = connect()
    print("ok: LOGIN as %s over plain IMAP on loopback: OK %s" % (user, data[0].decode()))

    typ, data = m.list()
    names = [re.sub(r'^\([^)]*\) (NIL|"[^"]*") "?(.*?)"?$', r"\2", d.decode()) for d in data if d]
    if typ != "OK" or names != [box]:
        fail("LIST: %s %r, expected the one mailbox %s" % (typ, data, box))

    typ, data = m.select(box, readonly=True)
    if typ != "OK" or int(data[0]) != count:
        fail("EXAMINE %s: %s %r, expected OK with %d messages" % (box, typ, data, count))
    typ, data = m.search(None, "ALL")
    if typ != "OK" or data[0].split() != [str(i).encode() for i in range(1, count + 1)]:
        fail("SEARCH ALL: %s %r, expected 1..%d" % (typ, data, count))
    print("ok: LIST shows %s alone; EXAMINE: %d messages; SEARCH ALL: 1..%d" % (box, count, count))

    typ, data = m.fetch("1", "(BODY.PEEK[])")
    if typ != "OK" or not isinstance(data[0], tuple):
        fail("FETCH 1 (BODY.PEEK[]): %s %r" % (typ, data))
    if data[0][1] != want:
        fail("FETCH 1 (BODY.PEEK[]): %d bytes, not the %d archived (%r...)" % (len(data[0][1]), len(want), data[0][1][:80]))
    if "\\Seen" in flags_of(m, 1):
        fail("message 1 is \\Seen after BODY.PEEK[]")
    typ, data = m.store("1", "+FLAGS", "(\\Seen)")
    if typ != "NO":
        fail("STORE +FLAGS (\\Seen) after EXAMINE: %s %r, expected NO" % (typ, data))
    print("ok: FETCH 1 (BODY.PEEK[]): the %d archived bytes, not \\Seen; STORE after EXAMINE: NO %s" % (len(want), data[0].decode()))

    typ, data = m.select(box)
    if typ != "OK":
        fail("SELECT %s: %s %r" % (box, typ, data))
    typ, data = m.store("1", "+FLAGS", "(\\Seen)")
    if typ != "OK" or b"\\Seen" not in b" ".join(d for d in data if isinstance(d, bytes)):
        fail("STORE 1 +FLAGS (\\Seen) after SELECT: %s %r" % (typ, data))
    typ, data = m.append(box, None, None, b"From: alice@example.test\r\nSubject: appended\r\n\r\nno\r\n")
    text = b" ".join(d for d in data if isinstance(d, bytes)).decode()
    if typ != "NO" or not text.startswith("[CANNOT]"):
        fail("APPEND: %s %r, expected NO [CANNOT]" % (typ, data))
    print("ok: SELECT, STORE 1 +FLAGS (\\Seen): OK; APPEND: NO %s" % text)
    typ, data = m.logout()
    if typ != "BYE":
        fail("LOGOUT: %s %r, expected BYE" % (typ, data))

    m, _ = connect()
    typ, data = m.select(box, readonly=True)
    flags = flags_of(m, 1)
    if "\\Seen" not in flags:
        fail("a second session: message 1 has FLAGS %s, \\Seen was not kept" % flags)
    m.logout()
    print("ok: LOGOUT: BYE; a second session sees message 1 \\Seen")
except (imaplib.IMAP4.error, OSError) as e:
    fail("%s: %s" % (type(e).__name__, e))
