"""imap_fetch.py PORT USER PASSWORD MAILBOX: one session of bench/imap-fetch.

LOGIN, EXAMINE, FETCH 1:* (BODY.PEEK[]) (timed: wall and the client's own CPU time), LOGOUT.
Prints JSON: seconds, cpu, messages, bytes, and a digest of the sorted SHA-256 digests of the
messages (the same set of messages, in whatever order, gives the same digest).
"""
import hashlib, imaplib, json, sys, time

port, user, password, box = sys.argv[1:5]
m = imaplib.IMAP4("127.0.0.1", int(port), timeout=300)
m.login(user, password)
typ, data = m.select(box, readonly=True)
if typ != "OK":
    sys.exit("EXAMINE %s: %s %r" % (box, typ, data))
exists = int(data[0])
t0, c0 = time.perf_counter(), time.process_time()
typ, data = m.fetch("1:*", "(BODY.PEEK[])")
t1, c1 = time.perf_counter(), time.process_time()
if typ != "OK":
    sys.exit("FETCH 1:* (BODY.PEEK[]): %s %r" % (typ, data[:2]))
bodies = [d[1] for d in data if isinstance(d, tuple)]
m.logout()
digests = sorted(hashlib.sha256(b).digest() for b in bodies)
print(json.dumps({"seconds": t1 - t0, "cpu": c1 - c0, "exists": exists, "messages": len(bodies),
                  "bytes": sum(map(len, bodies)), "digest": hashlib.sha256(b"".join(digests)).hexdigest()}))
