"""split_archive.py ARCHIVE_JSON EXPORT OUTDIR

The archived messages, out of crewmail export (mboxrd, LF): each message between its "From "
line and the empty line after it, one level of ">" taken off lines matching ^>+From , lines
ended with CRLF again (the archive keeps messages as SMTP carried them). Each is written to
OUTDIR/SEQ.eml; its length must be the size archive ls -json gives, which also catches a message
whose last line had no line end (export cannot show that).
"""
import json, os, re, sys

archive_json, export, outdir = sys.argv[1:4]
posts = [json.loads(l) for l in open(archive_json) if l.strip()]
lines = open(export, "rb").read().split(b"\n")
if lines[-1:] == [b""]:
    lines.pop()
msgs, cur, blank = [], None, True
for line in lines:
    if blank and line.startswith(b"From "):
        if cur is not None:
            msgs.append(cur)
        cur, blank = [], False
        continue
    if cur is None:
        sys.exit("the export does not start with a From line")
    blank = line == b""
    if re.match(rb">+From ", line):
        line = line[1:]
    cur.append(line)
if cur is not None:
    msgs.append(cur)
if len(msgs) != len(posts):
    sys.exit("the export holds %d messages, archive ls -json %d posts" % (len(msgs), len(posts)))
os.makedirs(outdir, exist_ok=True)
for post, m in zip(posts, msgs):
    if m[-1:] != [b""]:
        sys.exit("post %d: no empty line after it in the export" % post["seq"])
    raw = b"".join(l + b"\r\n" for l in m[:-1])
    if len(raw) != post["size"]:
        sys.exit("post %d: %d bytes out of the export, archive ls -json says %d" % (post["seq"], len(raw), post["size"]))
    with open(os.path.join(outdir, "%d.eml" % post["seq"]), "wb") as f:
        f.write(raw)
print("%d messages, %d bytes" % (len(posts), sum(p["size"] for p in posts)))
