"""mime.py parts FILE: the top content type, then one line per leaf part: type, charset,
transfer encoding. mime.py part FILE TYPE: the decoded body of the one leaf part of TYPE."""
import email, sys
msg = email.message_from_binary_file(open(sys.argv[2], "rb"))
leaves = [p for p in msg.walk() if not p.is_multipart()]
if sys.argv[1] == "parts":
    print(msg.get_content_type())
    for p in leaves:
        print(p.get_content_type(), p.get_content_charset(), str(p.get("Content-Transfer-Encoding", "")).lower())
    sys.exit(0)
found = [p for p in leaves if p.get_content_type() == sys.argv[3]]
if len(found) != 1:
    sys.exit("%d %s parts, expected 1" % (len(found), sys.argv[3]))
sys.stdout.buffer.write(found[0].get_payload(decode=True))
