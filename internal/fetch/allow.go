package fetch

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
)

// special are the address ranges a download may not reach unless the
// policy allows them, each with the word an error uses for it. IPv4-mapped
// IPv6 addresses are checked as the IPv4 address they carry.
type specialRange struct {
	prefix netip.Prefix
	kind   string
}

var special = func() []specialRange {
	var out []specialRange
	add := func(kind string, cidrs ...string) {
		for _, c := range cidrs {
			out = append(out, specialRange{netip.MustParsePrefix(c), kind})
		}
	}
	add("loopback", "127.0.0.0/8", "::1/128")
	add("unspecified", "0.0.0.0/8", "::/128")
	add("link-local", "169.254.0.0/16", "fe80::/10")
	add("private", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7", "fec0::/10")
	add("shared (carrier-grade NAT)", "100.64.0.0/10")
	add("multicast", "224.0.0.0/4", "ff00::/8")
	add("reserved", "240.0.0.0/4")
	add("special-purpose", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "198.18.0.0/15",
		"198.51.100.0/24", "203.0.113.0/24", // protocol assignments, documentation, benchmarking
		"::/96", "64:ff9b::/96", "64:ff9b:1::/48", "100::/64", // IPv4-compatible, NAT64, discard
		"2001::/23", "2001:db8::/32", "2002::/16") // IETF assignments (Teredo), documentation, 6to4
	return out
}()

// kindOf says which special range ip is in ("" for none).
func kindOf(ip netip.Addr) string {
	ip = ip.Unmap()
	for _, s := range special {
		if s.prefix.Contains(ip) {
			return s.kind
		}
	}
	return ""
}

// allowList is a Policy's Allow, parsed.
type allowList struct {
	prefixes []netip.Prefix
	hosts    map[string]bool
}

var hostRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$`)

func parseAllow(entries []string) (allowList, error) {
	a := allowList{hosts: map[string]bool{}}
	for _, e := range entries {
		e = strings.ToLower(strings.TrimSpace(e))
		if p, err := netip.ParsePrefix(e); err == nil {
			a.prefixes = append(a.prefixes, p.Masked())
			continue
		}
		if ip, err := netip.ParseAddr(e); err == nil {
			a.prefixes = append(a.prefixes, netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen()))
			continue
		}
		if !hostRE.MatchString(e) {
			return a, fmt.Errorf("download.allow: %q is not a CIDR, an address or a host name", e)
		}
		a.hosts[e] = true
	}
	return a, nil
}

// check refuses a connection to ip (an address, or a host name when
// called before resolution, which passes) for host unless ip is ordinary
// or the allow-list names host, ip or a range holding it.
func (a allowList) check(host, ip string) error {
	if a.hosts[strings.ToLower(host)] {
		return nil
	}
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return nil // a name: its addresses are checked as they are connected to
	}
	addr = addr.Unmap().WithZone("")
	for _, p := range a.prefixes {
		if p.Contains(addr) {
			return nil
		}
	}
	if kind := kindOf(addr); kind != "" {
		return &refusal{what: "connection to ", host: host, ip: addr.String(), kind: kind}
	}
	return nil
}

// refusal is a connection the policy does not allow.
type refusal struct {
	what, host, ip, kind string
}

func (r *refusal) Error() string {
	return fmt.Sprintf("%s%s refused: %s is a %s address (download.allow can allow it)", r.what, r.host, r.ip, r.kind)
}
