package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseArgs(t *testing.T) {
	for _, tt := range []struct {
		args []string
		pos  []string
		json bool
		n    int
		file string
	}{
		{[]string{"--json", "1"}, []string{"1"}, true, 0, ""},
		{[]string{"1", "--json"}, []string{"1"}, true, 0, ""},
		{[]string{"1", "--n", "3", "2", "--json"}, []string{"1", "2"}, true, 3, ""},
		{[]string{"--n=4", "x", "-json=false"}, []string{"x"}, false, 4, ""},
		{[]string{"a", "--file", "-", "b"}, []string{"a", "b"}, false, 0, "-"},
		{[]string{"a", "--", "--json"}, []string{"a", "--json"}, false, 0, ""},
		{[]string{"--n", "-1", "p"}, []string{"p"}, false, -1, ""},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		js := fs.Bool("json", false, "")
		n := fs.Int("n", 0, "")
		file := fs.String("file", "", "")
		if err := parseArgs(fs, tt.args); err != nil {
			t.Errorf("%v: %v", tt.args, err)
			continue
		}
		if !slices.Equal(fs.Args(), tt.pos) && !(len(tt.pos) == 0 && fs.NArg() == 0) || *js != tt.json || *n != tt.n || *file != tt.file {
			t.Errorf("%v: args %q, json %v, n %d, file %q", tt.args, fs.Args(), *js, *n, *file)
		}
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(&bytes.Buffer{})
	fs.Int("n", 0, "")
	for _, args := range [][]string{{"1", "--nope"}, {"1", "--n"}} {
		if err := parseArgs(fs, args); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}

// TestFlagsAfterArguments: commands take their flags before or after their
// arguments. A request that does not exist is an error (1) whichever the
// order, never a usage error (2).
func TestFlagsAfterArguments(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	cli := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := run(context.Background(), args, &out, &errOut)
		return out.String() + errOut.String(), err
	}
	if out, err := cli("user", "add", "cli:root", "--roles", "admin", "--data", data); err != nil {
		t.Fatalf("user add, flags after the name: %v\n%s", err, out)
	}
	if out, err := cli("user", "list", "--data", data, "--json"); err != nil || !strings.Contains(out, "cli:root") {
		t.Fatalf("user list: %v\n%s", err, out)
	}
	for _, args := range [][]string{
		{"rights", "show", "7", "--json", "--data", data},
		{"rights", "show", "--json", "7", "--data", data},
		{"rights", "show", "--data", data, "--json", "7"},
	} {
		out, err := cli(args...)
		var ee exitError
		if err == nil || errors.As(err, &ee) && ee.code == 2 || !strings.Contains(out+err.Error(), "not found") && !strings.Contains(out+err.Error(), "no such") {
			t.Errorf("gabarit %v: %v\n%s", args, err, out)
		}
	}
	if _, err := cli("rights", "show", "7", "--nope", "--data", data); func() bool { var ee exitError; return !errors.As(err, &ee) || ee.code != 2 }() {
		t.Errorf("an unknown flag after the argument: %v, want a usage error", err)
	}
}
