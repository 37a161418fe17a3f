//go:build cgo && onnx

package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestPolicyFPIR: an admin sets the searches' target FPIR within its
// range; the policy says who set it; others and values out of range are
// refused.
func TestPolicyFPIR(t *testing.T) {
	data := t.TempDir()
	out, _, err := cli(t, data, "policy", "show", "--json")
	var p policyJSON
	if err != nil || json.Unmarshal([]byte(out), &p) != nil || p.FPIR != 0.01 || !p.Default {
		t.Fatalf("default policy: %q, %v", out, err)
	}
	for _, bad := range []string{"0", "0.5", "x", "NaN"} {
		if _, _, err := cli(t, data, "policy", "set", "--fpir", bad); exitCode(err) != 2 {
			t.Errorf("--fpir %s: %v, want a usage error", bad, err)
		}
	}
	if _, _, err := cli(t, data, "user", "add", "--roles", "admin", "cli:someone-else"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := cli(t, data, "policy", "set", "--fpir", "0.005"); err == nil || !strings.Contains(err.Error(), "not an admin") {
		t.Fatalf("a non-admin set the policy: %v", err)
	}
	if _, _, err := cli(t, data, "user", "add", "--roles", "admin", actor()); err == nil {
		t.Fatal("a non-admin added themselves")
	}
}

// TestPolicyFPIRSet: the first admin sets the FPIR; show reports it.
func TestPolicyFPIRSet(t *testing.T) {
	data := t.TempDir()
	if _, _, err := cli(t, data, "user", "add", "--roles", "admin", actor()); err != nil {
		t.Fatal(err)
	}
	if out, stderr, err := cli(t, data, "policy", "set", "--fpir", "0.005"); err != nil {
		t.Fatalf("policy set: %v %q %q", err, out, stderr)
	}
	out, _, err := cli(t, data, "policy", "show", "--json")
	var p policyJSON
	if err != nil || json.Unmarshal([]byte(out), &p) != nil || p.FPIR != 0.005 || p.Default || p.SetBy != actor() {
		t.Fatalf("policy after set: %q, %v", out, err)
	}
	out, _, err = cli(t, data, "audit", "list", "--json")
	if err != nil || !strings.Contains(out, "policy.set") {
		t.Errorf("audit list has no policy.set: %v", err)
	}
}
