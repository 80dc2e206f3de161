"""smtp_latency.py PORT SESSIONS PER_SESSION SIZE SENDER RCPT: DATA→250 latency of an SMTP server.

SESSIONS processes (not threads: one client's wait must not be another's), each one connection
on a plain socket: EHLO, then PER_SESSION transactions MAIL, RCPT, DATA, the message (about
SIZE bytes, a unique Message-ID each), each timed from sending the message with its final
"." (one write, TCP_NODELAY) to reading the reply to it, which must be 250. Prints JSON: p50 and p99 in milliseconds, count, and posts/s
over the whole run (wall time of all sessions).
"""
import json, multiprocessing, os, socket, sys, time

port, sessions, per, size, sender, rcpt = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
filler = ("The quick brown fox jumps over the lazy dog, again and again, line after line.\r\n" * (size // 80 + 1))[:size]


def reply(f):
    """Reads one (possibly multi-line) reply; returns its code."""
    while True:
        l = f.readline()
        if not l:
            raise EOFError("connection closed")
        if l[3:4] != b"-":
            return int(l[:3])


def session(k, out):
    s = socket.create_connection(("127.0.0.1", port), timeout=120)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    f = s.makefile("rb")
    reply(f)
    s.sendall(b"EHLO latency.example.test\r\n")
    reply(f)
    lat = []
    for i in range(per):
        s.sendall(b"MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n" % (sender.encode(), rcpt.encode()))
        codes = [reply(f), reply(f), reply(f)]
        if codes != [250, 250, 354]:
            raise SystemExit("session %d: MAIL/RCPT/DATA answered %s" % (k, codes))
        msg = ("From: <%s>\r\nTo: <%s>\r\nSubject: latency %d.%d\r\nMessage-ID: <lat.%d.%d.%d.%d@example.test>\r\n"
               "Date: %s\r\n\r\n%s\r\n" % (sender, rcpt, k, i, os.getpid(), k, i, int(time.time() * 1e6),
                                          time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime()), filler)).encode()
        # The message and its final "." in one write (with Nagle on, a separate small write of
        # the "." would wait for the delayed ACK of the message: 40 ms on Linux loopback).
        t0 = time.perf_counter()
        s.sendall(msg + b".\r\n")
        code = reply(f)
        lat.append(time.perf_counter() - t0)
        if code != 250:
            raise SystemExit("session %d: the message was answered %d" % (k, code))
    s.sendall(b"QUIT\r\n")
    out.put(lat)


if __name__ == "__main__":
    q = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=session, args=(k, q)) for k in range(sessions)]
    t0 = time.perf_counter()
    for p in procs:
        p.start()
    lat = []
    for _ in procs:
        lat += q.get()
    wall = time.perf_counter() - t0
    for p in procs:
        p.join()
        if p.exitcode != 0:
            sys.exit("a session failed")
    lat.sort()
    pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000
    print(json.dumps({"p50_ms": round(pick(0.50), 3), "p99_ms": round(pick(0.99), 3), "count": len(lat),
                      "posts_s": round(len(lat) / wall)}))
