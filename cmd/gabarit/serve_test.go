package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

// TestServeTrustedProxyFlag: an invalid --trusted-proxy (or
// GABARIT_TRUSTED_PROXIES) stops serve before it opens anything, with a
// usage error naming the value; the flag is in serve's help.
func TestServeTrustedProxyFlag(t *testing.T) {
	t.Setenv("GABARIT_DATA", t.TempDir())
	t.Setenv("GABARIT_CACHE", t.TempDir())
	serve := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := run(context.Background(), append([]string{"serve"}, args...), &out, &errOut)
		return errOut.String(), err
	}
	for _, tt := range []struct {
		name, env string
		args      []string
		bad       string
	}{
		{name: "bad CIDR", args: []string{"--trusted-proxy", "10.0.0.0/33"}, bad: "10.0.0.0/33"},
		{name: "a host name in a list", args: []string{"--trusted-proxy=10.0.0.1,proxy.example"}, bad: "proxy.example"},
		{name: "repeated, the second bad", args: []string{"--trusted-proxy", "fd00::/8", "--trusted-proxy", "fd00::/129"}, bad: "fd00::/129"},
		{name: "environment", env: "10.0.0.0/8, 300.1.1.1", bad: "300.1.1.1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(envTrustedProxies, tt.env)
			errOut, err := serve(tt.args...)
			var ee exitError
			if !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(errOut, `trusted proxy "`+tt.bad+`"`) {
				t.Errorf("serve %v: %v %q", tt.args, err, errOut)
			}
		})
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"help", "serve"}, &out, &out); err != nil ||
		!strings.Contains(out.String(), "-trusted-proxy") || !strings.Contains(out.String(), envTrustedProxies) {
		t.Errorf("help serve: %v\n%s", err, out.String())
	}
}
