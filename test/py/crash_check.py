"""crash_check.py poll|final|failover RECORDS ARCHIVE_JSON DUMP_DIR MEMBER...: the crash test's checks.

Reads RECORDS (the load generator's), the archive (archive ls -json) and the dumps. With "poll",
prints how many (archived post, member) pairs have no complete dump yet, and the number of
dumps; with "final", prints the summary, and every violation as "FAIL: ..." lines (exit 1 if
any). "failover" is "final" where a post archived but answered 4xx is allowed: during a
database failover a commit can succeed while its answer is lost (the post must still be archived
once and delivered; the client's resend is a duplicate by its Message-ID).
"""
import collections, json, os, re, sys

mode, records, archive, dumpdir = sys.argv[1:5]
members = sys.argv[5:]

archived = collections.Counter()
with open(archive) as f:
    for line in f:
        if line.strip():
            archived[json.loads(line)["message_id"].strip("<>")] += 1

outcome = {}   # id -> ack / refused / tempfail / lost / unsent
sent = set()
detail = {}
with open(records) as f:
    for line in f:
        kind, mid, *rest = line.split(" ", 2)
        mid = mid.strip()
        if kind == "sent":
            sent.add(mid)
            continue
        if mid in outcome:
            print("FAIL: the generator recorded two outcomes for %s: %s and %s" % (mid, outcome[mid], kind))
        outcome[mid] = kind
        detail[mid] = " ".join(rest).strip()
# A post whose data was sent but that has no outcome (the generator died mid-transaction) is
# as uncertain as a lost one.
for mid in sent:
    outcome.setdefault(mid, "lost")

delivered = collections.Counter()  # (id, rcpt) -> complete dumps
incomplete, strangers, foreign = 0, [], []
ndumps = 0
rcpt_re = re.compile(rb"^X-Rcpt-Args: <([^>]*)>", re.M)
for dirpath, _, files in os.walk(dumpdir):
    for name in files:
        ndumps += 1
        try:
            with open(os.path.join(dirpath, name), "rb") as f:
                data = f.read()
        except FileNotFoundError:  # an aborted transaction, unlinked by smtp-sink
            continue
        # The sink's own lines, then its Received header, then the message.
        sink_hdr, _, msg = data.partition(b"\n\tby ")
        header = msg.split(b"\n\n", 1)[0]
        m = re.search(rb"^Message-ID:\s*<([^>]*)>", header, re.M | re.I)
        mid = m.group(1).decode(errors="replace") if m else None
        if mid is None or not data.endswith(("-- crash-test end of %s\n\n" % mid).encode()):
            incomplete += 1
            continue
        for r in rcpt_re.findall(sink_hdr):
            r = r.decode(errors="replace")
            if r not in members:
                strangers.append("%s to %s" % (mid, r))
            delivered[(mid, r)] += 1
        if mid not in archived:
            foreign.append(mid)

want = [(mid, r) for mid in archived for r in members]
missing = [p for p in want if delivered[p] == 0]
if mode == "poll":
    print(len(missing), ndumps)
    sys.exit(0)

fails = []
acked = [mid for mid, k in outcome.items() if k == "ack"]
for mid in acked:
    if archived[mid] == 0:
        fails.append("acknowledged post <%s> is not in the archive: lost after its 250" % mid)
    elif archived[mid] != 1:
        fails.append("acknowledged post <%s> is in the archive %d times, expected once" % (mid, archived[mid]))
for mid, n in archived.items():
    if n > 1 and outcome.get(mid) != "ack":
        fails.append("post <%s> is in the archive %d times" % (mid, n))
ambiguous = []  # failover: archived, answered 4xx (the commit's answer lost in the switch)
for mid in archived:
    k = outcome.get(mid)
    if k in ("ack", "lost"):
        continue
    if k is None:
        fails.append("post <%s> is archived but the generator never sent it" % mid)
    elif k == "unsent":
        fails.append("post <%s> is archived but its data was never sent (%s)" % (mid, detail[mid]))
    elif k == "tempfail" and mode == "failover":
        # The database committed the post but its answer was lost with the primary: crewmail
        # could only say 4xx, the client sends it again and its Message-ID makes that a
        # duplicate. Not a lost 250; it must still be archived once and delivered (above, below).
        ambiguous.append(mid)
    else:
        fails.append("post <%s> is archived but the client saw it %s (%s)" % (mid, k, detail[mid]))
for mid, r in missing:
    what = "acknowledged" if outcome.get(mid) == "ack" else "archived (in flight)"
    fails.append("%s post <%s> never reached %s" % (what, mid, r))
for s in strangers:
    fails.append("a copy went to a non-member: %s" % s)
for mid in sorted(set(foreign)):
    fails.append("smtp-sink got <%s>, which is not in the archive" % mid)

kinds = collections.Counter(outcome.values())
lost_archived = sum(1 for mid, k in outcome.items() if k == "lost" and archived[mid])
dups = sum(n - 1 for p, n in delivered.items() if n > 1)
dup_posts = len({mid for (mid, _), n in delivered.items() if n > 1})
print("posts acknowledged (250):       %d" % kinds["ack"])
print("posts in the archive:           %d" % sum(archived.values()))
print("in-flight posts (archived without a 250): %d of %d whose connection broke after the data" % (lost_archived, kinds["lost"]))
print("refused after the data:         %d 5xx, %d 4xx; not sent (failed before the data): %d" % (kinds["refused"], kinds["tempfail"], kinds["unsent"]))
print("deliveries checked:             %d (%d posts x %d members), %d dumps at smtp-sink" % (len(want), len(archived), len(members), ndumps))
if ambiguous:
    print("archived, answered 4xx (commit's answer lost in the failover): %d" % len(ambiguous))
print("duplicate deliveries:           %d (of %d posts)" % (dups, dup_posts))
if incomplete:
    print("incomplete dumps (ignored):     %d" % incomplete)
if kinds["refused"] or kinds["tempfail"]:
    seen = collections.Counter(detail[mid] for mid, k in outcome.items() if k in ("refused", "tempfail"))
    for d, n in seen.most_common(3):
        print("  refusal seen %d times: %s" % (n, d))
if kinds["ack"] == 0:
    fails.append("no post was acknowledged at all: the load generator never got a 250")
for f in fails[:20]:
    print("FAIL: " + f)
if len(fails) > 20:
    print("FAIL: ... and %d more" % (len(fails) - 20))
sys.exit(1 if fails else 0)
