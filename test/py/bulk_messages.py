"""bulk_messages.py N SIZE LIST MBOX [MAILDIR]: many messages, fast, for bench/run.

bench_messages.py writes every message's body afresh (about 200 messages a second); an archive
of a million posts needs something quicker. This one makes a pool of 512 bodies of about SIZE
bytes once, from a fixed seed and from the same words, names and header shapes, and gives each
of the N messages its own header: a unique Message-ID, a date 97 s after the previous one, a
subject, and, for six in ten, In-Reply-To/References to one of the 50 before it (threads as a
busy list has them). Writes an mboxrd file (LF; ">From " quoting) for crewmail import and, when
MAILDIR is given, the same messages as Dovecot's Maildir files in MAILDIR/cur (S= and W= sizes
in the names, as Dovecot names what it delivers). Prints "N TOTAL_BYTES" (CRLF bytes).
"""
import os, random, re, sys, time
from message_text import addr, ascii_words, display, names, paragraph, words

n, size, list_addr, mbox_path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
maildir = sys.argv[5] if len(sys.argv) > 5 else None
rnd = random.Random(20261204)


def body():
    lines, length = ["Hello crew,", ""], 13
    want = size * rnd.uniform(0.8, 1.2) - 600  # the header is about 600 bytes
    while length < want:
        p = paragraph(rnd) + [""]
        lines += p
        length += sum(len(l.encode()) + 2 for l in p)
    return "\r\n".join(lines).encode()


def quoted(lf):  # mboxrd: one more ">" on lines that read ^>*From
    return b"\n".join(b">" + l if re.match(rb">*From ", l) else l for l in lf.split(b"\n"))


bodies = [body() for _ in range(512)]
quoted_bodies = [quoted(b.replace(b"\r\n", b"\n")) for b in bodies]
froms = [(display(x), addr(x)) for x in names]
subjects, ids = [], []
t0 = 1795000000
total = 0
if maildir:
    os.makedirs(os.path.join(maildir, "cur"), exist_ok=True)
with open(mbox_path, "wb", buffering=1 << 20) as mbox:
    for i in range(n):
        disp, frm = froms[i % len(froms)]
        when = t0 + i * 97
        date = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(when))
        msgid = "bulk.%d.%08x@example.test" % (i, rnd.getrandbits(32))
        reply = i > 0 and rnd.random() < 0.6
        if reply:
            parent = rnd.randrange(max(0, i - 50), i)
            subject = "Re: " + subjects[parent].removeprefix("Re: ")
        else:
            subject = " ".join(rnd.choice(ascii_words) for _ in range(rnd.randint(3, 8))).capitalize()
        head = ("Received: from mail.example.test (mail.example.test [192.0.2.%d])\r\n"
                "\tby lists.example.test (crewmail) with ESMTPS id %012x\r\n"
                "\tfor <%s>; %s\r\n"
                "From: %s <%s>\r\nTo: Crew <%s>\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <%s>\r\n"
                % (i % 250 + 1, rnd.getrandbits(48), list_addr, date, disp, frm, list_addr, subject, date, msgid))
        if reply:
            head += "In-Reply-To: <%s>\r\nReferences: <%s>\r\n" % (ids[parent], ids[parent])
        head += ("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8; format=flowed\r\n"
                 "Content-Transfer-Encoding: 8bit\r\nUser-Agent: bench/run\r\n\r\n")
        sig = "\r\n-- \r\n%s\r\n" % names[i % len(names)]
        msg = head.encode() + bodies[i % len(bodies)] + sig.encode()
        subjects.append(subject)
        ids.append(msgid)
        total += len(msg)
        lf = msg.replace(b"\r\n", b"\n")
        # mboxrd: the "From " line, the message with its body's From lines quoted (the header's
        # lines never start with "From "), an empty line.
        mbox.write(b"From %s %s\n" % (frm.encode(), time.strftime("%a %b %d %H:%M:%S %Y", time.gmtime(when)).encode()))
        mbox.write(head.replace("\r\n", "\n").encode() + quoted_bodies[i % len(bodies)] + sig.replace("\r\n", "\n").encode())
        mbox.write(b"\n")
        if maildir:
            fname = "%d.M%dP1.bench,S=%d,W=%d:2," % (when, i, len(lf), len(msg))
            path = os.path.join(maildir, "cur", fname)
            with open(path, "wb") as f:
                f.write(lf)
            os.utime(path, (when, when))
print("%d %d" % (n, total))
