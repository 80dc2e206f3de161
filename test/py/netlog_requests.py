"""netlog_requests.py NETLOG: the http(s) URLs a page asked for, one a line, from Chromium's
NetLog. Chromium asks for some of its own (update checks, the time); the page's requests are
those keyed to its file:// site. Run with /usr/bin/python3."""
import json
import sys

log = json.load(open(sys.argv[1]))
start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
for e in log["events"]:
    p = e.get("params", {})
    if e["type"] == start and str(p.get("url", "")).startswith(("http:", "https:")) \
            and ("file://" in str(p.get("network_isolation_key", "")) or "file://" in str(p.get("site_for_cookies", ""))):
        print(p["url"])
