// Package weaviatetest gives tests the Weaviate cluster they may use.
package weaviatetest

import (
	"os"
	"testing"
)

// Environment variables of the Weaviate tests.
const (
	// EnvTestWeaviate names the cluster the tests may use, as an index URL
	// (what scripts/weaviate.sh url prints).
	EnvTestWeaviate = "GABARIT_TEST_WEAVIATE"
	// EnvRequireWeaviate, when set, makes a missing EnvTestWeaviate a
	// failure rather than a skip (CI sets it).
	EnvRequireWeaviate = "GABARIT_REQUIRE_WEAVIATE"
)

// URL returns the index URL of the shared test cluster. Without
// GABARIT_TEST_WEAVIATE the test is skipped, or fails when
// GABARIT_REQUIRE_WEAVIATE is set. The URL is not checked: the caller
// parses it.
func URL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(EnvTestWeaviate)
	if u == "" {
		msg := EnvTestWeaviate + " is not set: start a cluster with scripts/weaviate.sh start and export " +
			EnvTestWeaviate + "=$(scripts/weaviate.sh url)"
		if os.Getenv(EnvRequireWeaviate) != "" {
			t.Fatal(msg + " (" + EnvRequireWeaviate + " is set)")
		}
		t.Skip(msg)
	}
	return u
}
