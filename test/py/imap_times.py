"""imap_times.py PORT USER PASSWORD MAILBOX RUNS [body]: how long an IMAP server takes to answer.

One session over a plain socket (no IMAP library: the client's own parsing should cost as
little as possible next to the server's work): LOGIN, then RUNS times SELECT MAILBOX and
FETCH 1:* (FLAGS), and with "body" FETCH 1:* (BODY.PEEK[]) too, each timed from sending the
command to reading its tagged OK (literals are read by their announced size). Prints JSON:
the median seconds of each ("select", "fetch_flags", "fetch_body"), "exists", and how many
messages each FETCH answered ("flags_answers", "body_answers", "body_bytes").
"""
import json, re, socket, statistics, sys, time

port, user, password, box, runs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
body = len(sys.argv) > 6 and sys.argv[6] == "body"
s = socket.create_connection(("127.0.0.1", int(port)), timeout=600)
f = s.makefile("rb", buffering=1 << 20)
f.readline()  # greeting
tag = 0
literal = re.compile(rb"\{(\d+)\}\r\n$")


def cmd(line):
    """Sends line; returns (seconds, untagged answers, literal bytes) at its tagged OK."""
    global tag
    tag += 1
    t = b"t%d " % tag
    t0 = time.perf_counter()
    s.sendall(t + line.encode() + b"\r\n")
    answers, nbytes = 0, 0
    while True:
        l = f.readline()
        if not l:
            sys.exit("connection closed during %s" % line)
        if l.startswith(b"* "):
            answers += 1
        while True:
            m = literal.search(l)
            if not m:
                break
            n = int(m.group(1))
            data = f.read(n)
            nbytes += len(data)
            l = f.readline()  # the rest of the response after the literal
        if l.startswith(t):
            if not l[len(t):].startswith(b"OK"):
                sys.exit("%s: %r" % (line, l))
            return time.perf_counter() - t0, answers, nbytes


cmd('LOGIN "%s" "%s"' % (user, password))
exists = 0
sel, flags, bodies = [], [], []
out = {}
for _ in range(runs):
    tag += 1
    t = b"t%d " % tag
    t0 = time.perf_counter()
    s.sendall(t + b'SELECT "' + box.encode() + b'"\r\n')
    while True:
        l = f.readline()
        m = re.match(rb"\* (\d+) EXISTS", l)
        if m:
            exists = int(m.group(1))
        if l.startswith(t):
            if not l[len(t):].startswith(b"OK"):
                sys.exit("SELECT: %r" % l)
            break
    sel.append(time.perf_counter() - t0)
    secs, n, _ = cmd("FETCH 1:* (FLAGS)")
    flags.append(secs)
    out["flags_answers"] = n
    if body:
        secs, n, nbytes = cmd("FETCH 1:* (BODY.PEEK[])")
        bodies.append(secs)
        out["body_answers"], out["body_bytes"] = n, nbytes
cmd("LOGOUT")
out.update(select=statistics.median(sel), fetch_flags=statistics.median(flags), exists=exists)
if body:
    out["fetch_body"] = statistics.median(bodies)
print(json.dumps(out))
