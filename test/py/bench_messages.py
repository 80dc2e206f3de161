"""bench_messages.py N SIZE LIST MBOX MAILDIR: the messages of bench/imap-fetch.

One run writes both copies of N messages of about SIZE bytes, from a fixed seed: an mboxrd file
(LF; lines matching ^>*From get one more ">") for crewmail import, which archives each message
with CRLF line ends exactly as generated, and Dovecot's Maildir files (LF) in MAILDIR/cur, named
as Dovecot names what it delivers: S= the file's size, W= the size with CRLF line ends (what
IMAP sends), so Dovecot need not read a file to know its size. Prints "N TOTAL_BYTES".
"""
import os, random, re, sys, time
from message_text import addr, ascii_words, display, names, paragraph, words

n, size, list_addr, mbox_path, maildir = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
rnd = random.Random(20261125)

t0 = 1795000000
subjects, ids, out = [], [], []
total = 0
with open(mbox_path, "wb") as mbox:
    for i in range(n):
        name = rnd.choice(names)
        when = t0 + i * 97
        date = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(when))
        msgid = "bench.%d.%08x@%s" % (i, rnd.getrandbits(32), addr(name).split("@")[1])
        reply = ids and rnd.random() < 0.6
        if reply:
            parent = rnd.randrange(max(0, len(ids) - 50), len(ids))
            subject = "Re: " + subjects[parent].removeprefix("Re: ")
        else:
            subject = " ".join(rnd.choice(ascii_words) for _ in range(rnd.randint(3, 8))).capitalize()
        head = [
            "Received: from mail.example.test (mail.example.test [192.0.2.%d])" % (i % 250 + 1),
            "\tby lists.example.test (crewmail) with ESMTPS id %012x" % rnd.getrandbits(48),
            "\tfor <%s>; %s" % (list_addr, date),
            "From: %s <%s>" % (display(name), addr(name)),
            "To: Crew <%s>" % list_addr,
            "Subject: %s" % subject,
            "Date: %s" % date,
            "Message-ID: <%s>" % msgid,
        ]
        if reply:
            head += ["In-Reply-To: <%s>" % ids[parent], "References: <%s>" % ids[parent]]
        head += ["MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8; format=flowed",
                 "Content-Transfer-Encoding: 8bit", "User-Agent: bench/imap-fetch"]
        body = ["Hello crew,", ""]
        if reply:
            body += ["On %s, someone wrote:" % date] + ["> " + l for l in paragraph(rnd, 68)] + [""]
        want = size * rnd.uniform(0.8, 1.2)
        while len("\r\n".join(head + [""] + body).encode()) < want - 120:
            body += paragraph(rnd) + [""]
        body += ["-- ", name]
        msg = ("\r\n".join(head + [""] + body) + "\r\n").encode()
        subjects.append(subject)
        ids.append(msgid)
        total += len(msg)
        lf = msg.replace(b"\r\n", b"\n")
        # mboxrd: the "From " line, the message with quoted From lines, an empty line.
        mbox.write(b"From %s %s\n" % (addr(name).encode(), time.strftime("%a %b %d %H:%M:%S %Y", time.gmtime(when)).encode()))
        for line in lf.split(b"\n")[:-1]:
            mbox.write((b">" + line if re.match(rb">*From ", line) else line) + b"\n")
        mbox.write(b"\n")
        fname = "%d.M%dP1.bench,S=%d,W=%d:2," % (when, i, len(lf), len(msg))
        with open(os.path.join(maildir, "cur", fname), "wb") as f:
            f.write(lf)
        os.utime(os.path.join(maildir, "cur", fname), (when, when))
print("%d %d" % (n, total))
