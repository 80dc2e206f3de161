"""split_mbox.py MBOX OUTDIR: each message of an mboxrd file as a file of its own, for tools
that take one message on standard input (mlmmj-receive, public-inbox-mda) in bench/run.

Messages are the lines between a "From " line and the next one, the empty line that ends each
taken off, one level of ">" taken off lines matching ^>+From ; written with LF line ends (as an
MTA hands a message to a local program) to OUTDIR/000001, OUTDIR/000002, …
"""
import os, re, sys

mbox, outdir = sys.argv[1], sys.argv[2]
os.makedirs(outdir, exist_ok=True)
quoted = re.compile(rb"^>(>*From )")
n, lines = 0, None


def flush():
    global n
    if lines is None:
        return
    body = lines[:-1] if lines and lines[-1] == b"\n" else lines
    n += 1
    with open(os.path.join(outdir, "%06d" % n), "wb") as f:
        f.write(b"".join(body))


with open(mbox, "rb") as f:
    for line in f:
        if line.startswith(b"From "):
            flush()
            lines = []
            continue
        if lines is not None:
            lines.append(quoted.sub(rb"\1", line))
flush()
print(n)
