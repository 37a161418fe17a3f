package weaviate

import (
	"slices"
	"strings"
	"testing"
)

func TestParseConfig(t *testing.T) {
	c, err := ParseConfig("weaviate://a:1,b:2?grpc=a:3,b:4&shards=6&replicas=3&write=all&read=one&compression=PQ&ef=200")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Endpoints.REST, []string{"a:1", "b:2"}) || !slices.Equal(c.Endpoints.GRPC, []string{"a:3", "b:4"}) ||
		c.Shards != 6 || c.Replicas != 3 || c.WriteConsistency != All || c.ReadConsistency != "ONE" ||
		c.Compression != CompressionPQ || c.Ef != 200 || c.DeleteConsistency != "" {
		t.Fatalf("parsed %+v", c)
	}
	if c, err := ParseConfig("weaviate://a:1"); err != nil || len(c.Endpoints.GRPC) != 0 || c.Shards != 0 {
		t.Fatalf("plain URL: %+v, %v", c, err)
	}
	for _, tc := range []struct{ in, want string }{
		{"weaviate://a:1?replicas=0", "from 1 to 16"},
		{"weaviate://a:1?shards=x", "whole number"},
		{"weaviate://a:1?read=two", "one, quorum or all"},
		{"weaviate://a:1?compression=lz4", "none, rq, pq or bq"},
		{"weaviate://a:1?delete=one", `unknown parameter "delete"`},
		{"weaviate://a:1?ef=1&ef=2", "given 2 times"},
		{"weaviate://a:1?grpc=a:2&grpc=a:3", "grpc"},
		{"weaviate://a:1?%zz", "bad query"},
		{"http://a:1", "weaviate://"},
	} {
		if _, err := ParseConfig(tc.in); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseConfig(%q) = %v, want an error saying %q", tc.in, err, tc.want)
		}
	}
}
