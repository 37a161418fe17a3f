package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"os/exec"
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

// TestHelp: gabarit help COMMAND [SUBCOMMAND] prints the usage and flags of
// every command and subcommand, and exits 0; an unknown one is a usage
// error.
func TestHelp(t *testing.T) {
	// Asking for help does nothing else; were a command to, it would not
	// touch this user's data or installation.
	t.Setenv("GABARIT_DATA", t.TempDir())
	t.Setenv("GABARIT_CACHE", t.TempDir())
	cli := func(args ...string) (string, string, error) {
		var out, errOut bytes.Buffer
		err := run(context.Background(), args, &out, &errOut)
		return out.String(), errOut.String(), err
	}
	for _, c := range commandNames {
		if c == "help" || c == "completion" || c == "version" {
			continue
		}
		targets := [][]string{{c}}
		for _, s := range subcommandsOf(c) {
			targets = append(targets, []string{c, s})
		}
		for _, args := range targets {
			out, errOut, err := cli(append([]string{"help"}, args...)...)
			if err != nil || !strings.Contains(strings.ToLower(out), "usage") || errOut != "" {
				t.Errorf("gabarit help %v: %v\n%s%s", args, err, out, errOut)
			}
			if len(args) == 2 && !strings.Contains(out, "  -") && c != "confirm" {
				t.Errorf("gabarit help %v lists no flag:\n%s", args, out)
			}
		}
	}
	if len(subcommandsOf("rights")) < 10 || !slices.Contains(subcommandsOf("rights"), "candidates") {
		t.Errorf("rights' subcommands: %v", subcommandsOf("rights"))
	}
	var ee exitError
	if _, errOut, err := cli("help", "nope"); !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(errOut, "no command") {
		t.Errorf("help of an unknown command: %v %q", err, errOut)
	}
}

// TestCompletion: the scripts are valid bash and complete every command
// and subcommand.
func TestCompletion(t *testing.T) {
	t.Setenv("GABARIT_DATA", t.TempDir())
	t.Setenv("GABARIT_CACHE", t.TempDir())
	for _, shell := range []string{"bash", "zsh"} {
		var out, errOut bytes.Buffer
		if err := run(context.Background(), []string{"completion", shell}, &out, &errOut); err != nil {
			t.Fatalf("completion %s: %v %s", shell, err, errOut.String())
		}
		script := out.String()
		for _, w := range append(slices.Clone(commandNames), "candidates", "notified", "openset", "authority") {
			if !strings.Contains(script, w) {
				t.Errorf("%s completion lacks %q", shell, w)
			}
		}
		if shell == "bash" {
			path := filepath.Join(t.TempDir(), "gabarit.bash")
			if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			if b, err := exec.Command("bash", "-n", path).CombinedOutput(); err != nil {
				t.Errorf("bash -n: %v\n%s", err, b)
			}
		}
	}
	var ee exitError
	if err := run(context.Background(), []string{"completion", "fish"}, &bytes.Buffer{}, &bytes.Buffer{}); !errors.As(err, &ee) || ee.code != 2 {
		t.Errorf("completion fish: %v", err)
	}
}
