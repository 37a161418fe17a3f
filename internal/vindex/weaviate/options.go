package weaviate

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// ParseConfig reads an index URL, the value of gabarit's --index:
//
//	weaviate://host:port[,host:port…][?grpc=host:port,…][&shards=N][&replicas=N]
//	    [&write=one|quorum|all][&read=one|quorum|all][&compression=none|rq|pq|bq][&ef=N]
//
// The addresses are ParseURL's; shards, replicas and compression apply to
// a collection when it is created; write and read are the consistency
// levels of adds and searches (deletes are always made at All, see
// Config.DeleteConsistency); ef is the search beam. The returned Config
// has no Collection, Dim or Transform: the caller gives them.
func ParseConfig(s string) (Config, error) {
	var c Config
	base, query, _ := strings.Cut(s, "?")
	bad := func(format string, args ...any) (Config, error) {
		return Config{}, fmt.Errorf("index URL %q: %s", s, fmt.Sprintf(format, args...))
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return bad("bad query: %v", err)
	}
	addr := base
	if g, ok := q["grpc"]; ok {
		addr = base + "?grpc=" + strings.Join(g, "&grpc=") // ParseURL says if given twice
	}
	if c.Endpoints, err = ParseURL(addr); err != nil {
		return Config{}, err
	}
	number := func(key string, lo, hi int) (int, error) {
		v := q.Get(key)
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			return 0, fmt.Errorf("index URL %q: %s=%q: want a whole number from %d to %d", s, key, v, lo, hi)
		}
		return n, nil
	}
	level := func(key string) (string, error) {
		switch v := strings.ToLower(q.Get(key)); v {
		case "one":
			return "ONE", nil
		case "quorum":
			return "QUORUM", nil
		case "all":
			return "ALL", nil
		default:
			return "", fmt.Errorf("index URL %q: %s=%q: want one, quorum or all", s, key, q.Get(key))
		}
	}
	for key, vals := range q {
		if len(vals) != 1 {
			return bad("%s given %d times", key, len(vals))
		}
		switch key {
		case "grpc":
		case "shards":
			if c.Shards, err = number(key, 1, 1024); err != nil {
				return Config{}, err
			}
		case "replicas":
			if c.Replicas, err = number(key, 1, 16); err != nil {
				return Config{}, err
			}
		case "ef":
			if c.Ef, err = number(key, 1, 4096); err != nil {
				return Config{}, err
			}
		case "write":
			if c.WriteConsistency, err = level(key); err != nil {
				return Config{}, err
			}
		case "read":
			if c.ReadConsistency, err = level(key); err != nil {
				return Config{}, err
			}
		case "compression":
			switch v := strings.ToLower(vals[0]); v {
			case CompressionNone, CompressionRQ, CompressionPQ, CompressionBQ:
				c.Compression = v
			default:
				return bad("compression=%q: want none, rq, pq or bq", vals[0])
			}
		default:
			return bad("unknown parameter %q (grpc, shards, replicas, write, read, compression, ef)", key)
		}
	}
	return c, nil
}
