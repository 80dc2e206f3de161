"""loadgen.py PORT RECORDS TAG SENDER RCPT THREADS [MAX]: the crash test's load generator.

THREADS SMTP connections posting as a member, each post with a unique Message-ID. One line per
event goes to RECORDS (appended with one write(2) each, so lines of concurrent threads never
mix): "sent ID" just before the data is sent (after the 354), then exactly one of "ack ID" (only
once the 250 has arrived), "refused ID CODE" (5xx after the data), "tempfail ID CODE" (4xx after
the data), "lost ID ERROR" (the connection broke after the data was sent: the 250 may have been
lost). "unsent ID STAGE CODE-or-ERROR": the transaction failed before the data went out (refused
at MAIL/RCPT/DATA, or the connection broke). SIGTERM stops it: each thread finishes the
transaction it is in and quits; with MAX, each thread also quits after MAX posts.
"""
import email.utils, os, signal, smtplib, socket, sys, threading, time

port, records, tag, sender, rcpt, threads = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6])
most = int(sys.argv[7]) if len(sys.argv) > 7 else None
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
print("ready", flush=True)  # the kill timer starts only now: a TERM before this line would kill us
fd = os.open(records, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

def record(*fields):
    os.write(fd, (" ".join(str(f) for f in fields).replace("\n", " ") + "\n").encode())

def message(mid, n):
    return ("From: Alice Example <%s>\r\n"
            "To: Crew <%s>\r\n"
            "Subject: crash test %s\r\n"
            "Date: %s\r\n"
            "Message-ID: <%s>\r\n"
            "MIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=us-ascii\r\n"
            "\r\n"
            "Post number %d of this connection.\r\n"
            "%s"
            "-- crash-test end of %s\r\n") % (sender, rcpt, mid, email.utils.formatdate(), mid, n,
                                             "Some text to give the post a body.\r\n" * 8, mid)

def worker(t):
    s, n = None, 0
    while not stop.is_set() and (most is None or n < most):
        if s is None:
            try:
                s = smtplib.SMTP("127.0.0.1", int(port), local_hostname="client.example.test", timeout=10)
                s.ehlo()
            except (OSError, smtplib.SMTPException):
                s = None
                time.sleep(0.05)
                continue
        n += 1
        mid = "ct.%s.%d.%d@example.test" % (tag, t, n)
        stage = "mail"
        try:
            code, resp = s.mail(sender)
            if code == 250:
                stage = "rcpt"
                code, resp = s.rcpt(rcpt)
            if code in (250, 251):
                stage = "data"
                code, resp = s.docmd("DATA")
            if code != 354:
                record("unsent", mid, stage, code)
                s.rset()
                continue
            record("sent", mid)
            stage = "sent"
            s.send(message(mid, n).encode() + b".\r\n")
            code, resp = s.getreply()
            if code == 250:
                record("ack", mid)
            elif code >= 500:
                record("refused", mid, code, resp.decode(errors="replace"))
            else:
                record("tempfail", mid, code, resp.decode(errors="replace"))
        except (OSError, smtplib.SMTPException) as e:
            record("lost" if stage == "sent" else "unsent", mid, stage, type(e).__name__)
            try:
                s.close()
            except OSError:
                pass
            s = None
    if s is not None:
        try:
            s.quit()
        except (OSError, smtplib.SMTPException):
            pass

workers = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(threads)]
for w in workers:
    w.start()
while not stop.is_set() and any(w.is_alive() for w in workers):
    stop.wait(0.05)
for w in workers:
    w.join(30)
os.close(fd)
sys.exit(1 if any(w.is_alive() for w in workers) else 0)
