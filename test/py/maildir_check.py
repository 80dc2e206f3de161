"""maildir_check.py MAILDIR ARCHIVED_DIR ARCHIVE_JSON

Each file of the Maildir is an archived message, byte for byte, once mbsync's own changes are
undone. isync 1.4 writes a message into a Maildir with the line ends of the system (LF: it drops
the CR of each CRLF that IMAP carries) and adds an "X-TUID: " field of 12 characters at the end
of the header (its temporary id for finding a message it stored). So: that field is taken out
and LF becomes CRLF (a file that kept CRLF is compared as it is). The files are matched to posts
by Message-ID; none may carry the S (seen) flag, since mbsync reads with BODY.PEEK[].
"""
import json, os, re, sys

maildir, archived, archive_json = sys.argv[1:4]
def fail(why):
    print("FAIL: " + why)
    sys.exit(1)

posts = [json.loads(l) for l in open(archive_json) if l.strip()]
by_id = {p["message_id"]: p for p in posts}
files = sorted(os.path.join(d, f) for d in (os.path.join(maildir, "cur"), os.path.join(maildir, "new")) for f in os.listdir(d))
if len(files) != len(posts):
    fail("the Maildir holds %d messages, archive ls -json shows %d posts" % (len(files), len(posts)))
seen, tuids, converted = set(), 0, 0
for path in files:
    name = os.path.basename(path)
    raw = open(path, "rb").read()
    if b"\r\n" not in raw:
        raw = raw.replace(b"\n", b"\r\n")
        converted += 1
    head, sep, body = raw.partition(b"\r\n\r\n")
    fields = head.split(b"\r\n")
    if re.fullmatch(rb"X-TUID: [A-Za-z0-9+/]{12}", fields[-1]):
        fields.pop()
        tuids += 1
    if any(f.lower().startswith(b"x-tuid:") for f in fields):
        fail("%s: an X-TUID field other than mbsync's last one" % name)
    raw = b"\r\n".join(fields) + sep + body
    ids = [m.group(1).decode() for f in fields for m in [re.match(rb"(?i)message-id:\s*<([^>]*)>", f)] if m]
    if len(ids) != 1 or ids[0] not in by_id:
        fail("%s: Message-ID %s is not one of the archive's" % (name, ids))
    if ids[0] in seen:
        fail("%s: a second file of <%s>" % (name, ids[0]))
    seen.add(ids[0])
    post = by_id[ids[0]]
    want = open(os.path.join(archived, "%d.eml" % post["seq"]), "rb").read()
    if raw != want:
        i = next((k for k in range(min(len(raw), len(want))) if raw[k] != want[k]), min(len(raw), len(want)))
        fail("%s (post %d): differs from the archived message at byte %d of %d/%d: %r != %r"
             % (name, post["seq"], i, len(raw), len(want), raw[max(0, i - 30):i + 30], want[max(0, i - 30):i + 30]))
    info = name.rpartition(":2,")[2] if ":2," in name else ""
    if "S" in info:
        fail("%s: marked seen (S), but nothing read it yet" % name)
print("%d files, each the archived message byte for byte once mbsync's X-TUID field (in %d) is taken out "
      "and LF made CRLF again (in %d); none marked seen" % (len(files), tuids, converted))
