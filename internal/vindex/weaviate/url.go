package weaviate

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// Scheme is the URL scheme ParseURL reads.
const Scheme = "weaviate"

// Endpoints are the addresses of the nodes of a Weaviate cluster, as
// host:port pairs, in the order the client tries them.
type Endpoints struct {
	REST []string // HTTP (REST and GraphQL) addresses, at least one
	GRPC []string // gRPC addresses of the same nodes in the same order, or none
}

// String returns the endpoints in the form ParseURL reads.
func (e Endpoints) String() string {
	s := Scheme + "://" + strings.Join(e.REST, ",")
	if len(e.GRPC) > 0 {
		s += "?grpc=" + strings.Join(e.GRPC, ",")
	}
	return s
}

// ParseURL reads weaviate://host:port[,host:port…][?grpc=host:port[,…]]:
// the REST addresses of the cluster's nodes, and optionally their gRPC
// addresses in the same order (one per REST address).
func ParseURL(s string) (Endpoints, error) {
	bad := func(format string, args ...any) (Endpoints, error) {
		return Endpoints{}, fmt.Errorf("weaviate URL %q: %s (want %s://host:port[,host:port…][?grpc=host:port,…])", s, fmt.Sprintf(format, args...), Scheme)
	}
	rest, ok := strings.CutPrefix(s, Scheme+"://")
	if !ok {
		return bad("does not start with %s://", Scheme)
	}
	hosts, query, _ := strings.Cut(rest, "?")
	if i := strings.IndexAny(hosts, "/#@"); i >= 0 {
		if hosts[i:] != "/" {
			return bad("unexpected %q after the addresses (no path, fragment or user name)", hosts[i:])
		}
		hosts = hosts[:i]
	}
	var e Endpoints
	var err error
	if e.REST, err = parseAddrs(hosts); err != nil {
		return bad("%v", err)
	}
	if query != "" {
		q, err := url.ParseQuery(query)
		if err != nil {
			return bad("bad query: %v", err)
		}
		for k, v := range q {
			if k != "grpc" {
				return bad("unknown parameter %q (only grpc)", k)
			}
			if len(v) != 1 {
				return bad("grpc given %d times", len(v))
			}
			if e.GRPC, err = parseAddrs(v[0]); err != nil {
				return bad("grpc: %v", err)
			}
		}
		if len(e.GRPC) != len(e.REST) {
			return bad("%d gRPC addresses for %d nodes: give one per node, in the same order", len(e.GRPC), len(e.REST))
		}
	}
	return e, nil
}

// parseAddrs reads a comma-separated list of host:port.
func parseAddrs(s string) ([]string, error) {
	if s == "" {
		return nil, errors.New("no address")
	}
	var out []string
	seen := map[string]bool{}
	for a := range strings.SplitSeq(s, ",") {
		host, port, err := net.SplitHostPort(a)
		if err != nil {
			return nil, fmt.Errorf("address %q is not host:port", a)
		}
		if host == "" {
			return nil, fmt.Errorf("address %q has no host", a)
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			return nil, fmt.Errorf("address %q: port %q is not a number in 1-65535", a, port)
		}
		if seen[a] {
			return nil, fmt.Errorf("address %q given twice", a)
		}
		seen[a] = true
		out = append(out, a)
	}
	return out, nil
}
