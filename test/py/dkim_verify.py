"""dkim_verify.py DNS_PORT FILE: prints True when dkimpy verifies the (first) DKIM signature of
the message in FILE, with the key from the DNS server on 127.0.0.1:DNS_PORT. Run with
/usr/bin/python3 (Debian's python3-dkim)."""
import sys

import dkim
import dns.resolver

r = dns.resolver.Resolver(configure=False)
r.nameservers = ["127.0.0.1"]
r.port = int(sys.argv[1])
f = lambda name, timeout=5: b"".join(r.resolve(name.decode(), "TXT")[0].strings)
print(dkim.verify(open(sys.argv[2], "rb").read(), dnsfunc=f))
