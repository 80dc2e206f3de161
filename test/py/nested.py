"""nested.py KIND LEVELS FROM TO MESSAGE-ID TEXT

A message whose body nests LEVELS multiparts (KIND multipart), each the only part of the one
around it, or LEVELS message/rfc822 parts (KIND message), with a text/plain part saying TEXT at
the bottom.
"""
import email.utils, sys

kind, levels, frm, to, msgid, text = sys.argv[1], int(sys.argv[2]), *sys.argv[3:7]
out = ["From: %s\r\nTo: %s\r\nSubject: nested %s\r\nDate: %s\r\nMessage-ID: <%s>\r\nMIME-Version: 1.0\r\n"
       % (frm, to, kind, email.utils.formatdate(), msgid)]
if kind == "multipart":
    for i in range(levels):
        out.append('Content-Type: multipart/mixed; boundary="=_nested-%06d"\r\n\r\n--=_nested-%06d\r\n' % (i, i))
    out.append("Content-Type: text/plain\r\n\r\n%s\r\n" % text)
    out.extend("--=_nested-%06d--\r\n" % i for i in reversed(range(levels)))
else:
    out.append("Content-Type: message/rfc822\r\n\r\n" * levels)
    out.append("Content-Type: text/plain\r\n\r\n%s\r\n" % text)
sys.stdout.write("".join(out))
