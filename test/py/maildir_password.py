"""maildir_password.py MAILDIR ADDRESS: the app password in the newest "Your password ..." mail
crewmail delivered to ADDRESS in its Maildir MAILDIR/ADDRESS (its quoted-printable body holds a line
"  Password:  xxxx-xxxx-xxxx-xxxx"); prints nothing when there is none yet."""
import email
import glob
import re
import sys

box = sys.argv[1] + "/" + sys.argv[2].lower()
for path in glob.glob(box + "/new/*") + glob.glob(box + "/cur/*"):
    msg = email.message_from_binary_file(open(path, "rb"))
    if msg["Delivered-To"] != sys.argv[2] or not str(msg["Subject"]).startswith("Your password"):
        continue
    text = msg.get_payload(decode=True).decode()
    found = re.findall(r"^\s*Password:\s+([a-z2-7]{4}(?:-[a-z2-7]{4}){3})\s*$", text, re.M)
    if found:
        print(found[-1])
