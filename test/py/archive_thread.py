"""archive_thread.py ARCHIVE_JSON MESSAGE-ID: the thread of the post with that Message-ID in the
output of archive ls -json, or "N posts" when not exactly one post has it."""
import json
import sys

ts = [p["thread"] for p in map(json.loads, open(sys.argv[1])) if p["message_id"] == sys.argv[2]]
print(ts[0] if len(ts) == 1 else "%d posts" % len(ts))
