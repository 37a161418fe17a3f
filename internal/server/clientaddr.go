package server

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// ParseTrustedProxies reads the reverse proxies whose forwarded client
// addresses are believed: each value is an address (10.0.0.2, ::1) or a
// network in CIDR notation (10.0.0.0/8, fd00::/8), several separated by
// commas. A value that is neither is an error that names it.
func ParseTrustedProxies(values []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, v := range values {
		for _, s := range strings.Split(v, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			p, err := parseTrusted(s)
			if err != nil {
				return nil, fmt.Errorf("trusted proxy %q: want an address or a network in CIDR notation, such as 10.0.0.1 or 10.0.0.0/8", s)
			}
			out = append(out, p)
		}
	}
	return out, nil
}

func parseTrusted(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 { // ::ffff:10.0.0.0/104 is 10.0.0.0/8
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap().WithZone("")
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// trusted reports whether a is one of the configured proxies.
func (s *Server) trusted(a netip.Addr) bool {
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientAddr is the address of the client that made r. It is the
// connection's peer, unless the peer is a trusted proxy: then the
// forwarded chain (X-Forwarded-For, or without it RFC 7239 Forwarded) is
// read from right to left, past the trusted proxies, and the first
// address that is not one is the client. A client's own forwarding
// headers are never believed: its connection does not come from a
// trusted proxy, or its entries sit left of those the proxies appended.
// Rate limits and whatever names a client's address use it.
func (s *Server) clientAddr(r *http.Request) string {
	peer, ok := parseHop(r.RemoteAddr)
	if !ok {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			return r.RemoteAddr
		}
		return host
	}
	if len(s.cfg.TrustedProxies) == 0 || !s.trusted(peer) {
		return peer.String()
	}
	client := peer // the nearest hop known so far
	chain := forwardedChain(r.Header)
	for i := len(chain) - 1; i >= 0; i-- {
		a, ok := parseHop(chain[i])
		if !ok {
			// An obfuscated or broken entry: the last trusted hop is
			// the best known.
			break
		}
		client = a
		if !s.trusted(a) {
			break
		}
	}
	return client.String()
}

// forwardedChain lists the addresses a request was forwarded for, the
// nearest last: X-Forwarded-For when the request has it, else the for=
// parameters of Forwarded.
func forwardedChain(h http.Header) []string {
	var out []string
	if xff := h.Values("X-Forwarded-For"); len(xff) > 0 {
		for _, v := range xff {
			for _, e := range strings.Split(v, ",") {
				out = append(out, strings.TrimSpace(e))
			}
		}
		return out
	}
	for _, v := range h.Values("Forwarded") {
		for _, elem := range strings.Split(v, ",") {
			found := ""
			for _, pair := range strings.Split(elem, ";") {
				k, val, ok := strings.Cut(strings.TrimSpace(pair), "=")
				if ok && strings.EqualFold(strings.TrimSpace(k), "for") {
					found = strings.Trim(strings.TrimSpace(val), `"`)
				}
			}
			out = append(out, found) // an element without for= breaks the chain
		}
	}
	return out
}

// parseHop reads one address of a forwarded chain or a RemoteAddr: an
// address, with or without a port, IPv6 in brackets or not.
func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	a, err := netip.ParseAddr(s)
	if err != nil {
		ap, perr := netip.ParseAddrPort(s)
		if perr != nil {
			a, err = netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
			if err != nil {
				return netip.Addr{}, false
			}
		} else {
			a = ap.Addr()
		}
	}
	return a.Unmap().WithZone(""), true
}

// limitKey is the key a client address counts under in the rate limits:
// the address itself for IPv4, its /64 network for IPv6 (one subscriber
// usually holds a whole /64 and can change address within it at will).
func limitKey(addr string) string {
	a, err := netip.ParseAddr(addr)
	if err != nil || !a.Is6() {
		return addr
	}
	p, err := a.Prefix(64)
	if err != nil {
		return addr
	}
	return p.String()
}

// clientKey is the key r's client counts under in the rate limits.
func (s *Server) clientKey(r *http.Request) string { return limitKey(s.clientAddr(r)) }
