package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestStoreConfig: the store and the master key are configured as the
// README says, and refused with a message that names what to do: a
// password or a key on the command line (exit 2, never repeated), an
// unknown scheme, backup and restore on a PostgreSQL store. No message
// holds the password.
func TestStoreConfig(t *testing.T) {
	const secret = "Pw4tEst0nly"
	for _, k := range []string{"GABARIT_STORE", "GABARIT_STORE_FILE", "GABARIT_MASTER_KEY", "GABARIT_MASTER_KEY_FILE", "GABARIT_AUDIT_WITNESS"} {
		t.Setenv(k, "")
	}
	t.Setenv("GABARIT_CACHE", t.TempDir())
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	run1 := func(env map[string]string, args ...string) (string, string, int) {
		t.Helper()
		for k, v := range env {
			t.Setenv(k, v)
		}
		var out, errOut bytes.Buffer
		err := run(context.Background(), args, &out, &errOut)
		for k := range env {
			t.Setenv(k, "")
		}
		code := 0
		var ee exitError
		switch {
		case errors.As(err, &ee):
			code = ee.code
		case err != nil:
			code = 1
			errOut.WriteString(err.Error())
		}
		return out.String(), errOut.String(), code
	}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		code int
		want string // in the standard error
	}{
		{name: "password in --store", args: []string{"source", "list", "--data", data, "--store", "postgres://gabarit:" + secret + "@127.0.0.1:1/gabarit"},
			code: 2, want: "GABARIT_STORE_FILE"},
		{name: "--master-key", args: []string{"source", "list", "--data", data, "--master-key", secret},
			code: 2, want: "GABARIT_MASTER_KEY_FILE"},
		{name: "--master-key=", args: []string{"source", "list", "--data", data, "--master-key=" + secret},
			code: 2, want: "GABARIT_MASTER_KEY_FILE"},
		{name: "unknown scheme", args: []string{"source", "list", "--data", data, "--store", "mysql://root@h/db"},
			code: 2, want: "unknown scheme mysql://"},
		{name: "GABARIT_MASTER_KEY", env: map[string]string{"GABARIT_MASTER_KEY": secret}, args: []string{"source", "list", "--data", data},
			code: 1, want: "GABARIT_MASTER_KEY: is not read"},
		{name: "unknown scheme in GABARIT_STORE", env: map[string]string{"GABARIT_STORE": "mysql://u:" + secret + "@h/db"},
			args: []string{"source", "list", "--data", data}, code: 1, want: "GABARIT_STORE: unknown scheme"},
		// Wherever the store is, a message names it without its password.
		{name: "database down", env: map[string]string{"GABARIT_STORE": "postgres://gabarit:" + secret + "@127.0.0.1:1/gabarit"},
			args: []string{"source", "list", "--data", filepath.Join(dir, "data2")}, code: 1, want: "127.0.0.1:1"},
		{name: "restore into PostgreSQL", env: map[string]string{"GABARIT_STORE": "postgres://gabarit:" + secret + "@127.0.0.1:1/gabarit"},
			args: []string{"restore", "--from", filepath.Join(dir, "none.tar"), "--data", filepath.Join(dir, "restored")}, code: 1, want: "pg_dump"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := run1(tt.env, tt.args...)
			if code != tt.code || !strings.Contains(errOut, tt.want) {
				t.Errorf("exit %d, want %d; stderr %q, want it to say %q", code, tt.code, errOut, tt.want)
			}
			if strings.Contains(out+errOut, secret) {
				t.Errorf("the output holds the secret: %q %q", out, errOut)
			}
		})
	}
	// Nothing was created by a refused command.
	for _, p := range []string{data, filepath.Join(dir, "restored")} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: %v, want it not created", p, err)
		}
	}
	// The flags are documented where gabarit help and completion read them.
	out, _, code := run1(nil, "help", "source", "list")
	if code != 0 || !strings.Contains(out, "-store") || !strings.Contains(out, "GABARIT_STORE_FILE") || !strings.Contains(out, "-master-key") {
		t.Errorf("gabarit help source list (exit %d) does not document --store and --master-key:\n%s", code, out)
	}
}
