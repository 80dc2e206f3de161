package check

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// host checks that hostname is a public name with an IPv4 address (HOST), and that each of its
// addresses names it back (PTR, which many receivers require: RFC 1912 §2.1). It returns the
// addresses, for the checks that follow.
func host(ctx context.Context, r Resolver, hostname string) ([]net.IP, []Finding) {
	f := Finding{What: "HOST"}
	if !strings.Contains(hostname, ".") || strings.EqualFold(hostname, "localhost") {
		f.Level = Fail
		f.Detail = fmt.Sprintf("hostname is %q, a name other servers cannot look up: set hostname in the configuration to this server's public name", hostname)
		return nil, []Finding{f}
	}
	wantA := fmt.Sprintf("%s. IN A <this server's public IPv4 address>", hostname)
	addrs, err := r.LookupIPAddr(ctx, hostname)
	if err != nil && !notFound(err) {
		f.Level, f.Detail = Fail, fmt.Sprintf("cannot look up the addresses of %s: %v", hostname, err)
		return nil, []Finding{f}
	}
	ipList := ips(addrs)
	var v4, public int
	for _, ip := range ipList {
		if ip.To4() != nil {
			v4++
		}
		if isPublic(ip) {
			public++
		}
	}
	switch {
	case len(ipList) == 0:
		f.Level, f.Record = Fail, wantA
		f.Detail = fmt.Sprintf("%s has no address (A record), so other servers cannot reach this server by its name", hostname)
		return nil, []Finding{f}
	case v4 == 0:
		f.Level, f.Record = Fail, wantA
		f.Detail = fmt.Sprintf("%s has only IPv6 addresses (%s); much of the world's mail still travels over IPv4 only: publish an A record too", hostname, joinIPs(ipList))
	case public == 0:
		f.Level = Warn
		f.Detail = fmt.Sprintf("%s has the address %s, which other servers on the internet cannot reach: publish this server's public address", hostname, joinIPs(ipList))
	default:
		f.Level, f.Detail = OK, fmt.Sprintf("%s has the address %s", hostname, joinIPs(ipList))
	}
	fs := []Finding{f}
	for _, ip := range ipList {
		fs = append(fs, ptr(ctx, r, hostname, ip))
	}
	return ipList, fs
}

// isPublic reports whether ip can be reached from the internet: not loopback, private,
// link-local or unspecified.
func isPublic(ip net.IP) bool {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return false
	}
	a = a.Unmap()
	return a.IsGlobalUnicast() && !a.IsPrivate()
}

// ptr checks that the reverse DNS of ip is hostname. A wrong one is a warning: receivers that
// require it refuse some mail, but the lists work.
func ptr(ctx context.Context, r Resolver, hostname string, ip net.IP) Finding {
	f := Finding{What: "PTR"}
	ask := fmt.Sprintf("ask your hosting provider to set the reverse DNS of %s to %s", ip, hostname)
	if rev, err := dns.ReverseAddr(ip.String()); err == nil {
		f.Record = fmt.Sprintf("%s IN PTR %s.", rev, hostname)
	}
	names, err := r.LookupAddr(ctx, ip.String())
	if err != nil && !notFound(err) {
		f.Level, f.Detail, f.Record = Warn, fmt.Sprintf("cannot look up the reverse DNS of %s: %v", ip, err), ""
		return f
	}
	if len(names) == 0 {
		f.Level = Warn
		f.Detail = fmt.Sprintf("%s has no reverse DNS (PTR record), and many receivers refuse or junk mail from such addresses: %s", ip, ask)
		return f
	}
	var got []string
	for _, n := range names {
		n = strings.TrimSuffix(n, ".")
		if strings.EqualFold(n, hostname) {
			return Finding{What: "PTR", Level: OK, Detail: fmt.Sprintf("%s points back to %s", ip, hostname)}
		}
		got = append(got, n)
	}
	f.Level = Warn
	f.Detail = fmt.Sprintf("the reverse DNS of %s is %s, not %s, and receivers expect the two to agree: %s", ip, strings.Join(got, ", "), hostname, ask)
	return f
}
