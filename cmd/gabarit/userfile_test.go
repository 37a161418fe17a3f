package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"gabarit/internal/imageproc"
	"gabarit/internal/source"
)

// runWithin runs the command line in-process and fails the test if it has
// not returned within two minutes (a FIFO must never block a command).
func runWithin(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	type result struct {
		out, errOut string
		err         error
	}
	done := make(chan result, 1)
	go func() {
		var out, errOut bytes.Buffer
		err := run(context.Background(), args, &out, &errOut)
		done <- result{out.String(), errOut.String(), err}
	}()
	select {
	case r := <-done:
		return r.out, r.errOut, r.err
	case <-time.After(2 * time.Minute):
		t.Fatalf("gabarit %q still running after two minutes", args)
		return "", "", nil
	}
}

// userFiles makes the hostile files of the probes: a FIFO, a 2 GiB sparse
// file, and a FIFO whose name holds a terminal escape; /dev/zero is used
// as it is.
func userFiles(t *testing.T) (fifo, sparse, escaped string) {
	t.Helper()
	dir := t.TempDir()
	fifo = filepath.Join(dir, "probe.jpg")
	escaped = filepath.Join(dir, "red\x1b[31m\x1b[2J.jpg")
	for _, p := range []string{fifo, escaped} {
		if err := syscall.Mkfifo(p, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	sparse = filepath.Join(dir, "sparse.jpg")
	if err := os.WriteFile(sparse, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(sparse, 2<<30); err != nil {
		t.Fatal(err)
	}
	return fifo, sparse, escaped
}

// TestProbeFilesRefused: `gabarit search`, `gabarit rights request` and
// `gabarit eval pairs` (its --pairs or --csv list) refuse a FIFO, /dev/zero and a 2 GiB file at once, before loading
// anything, instead of hanging or reading without end; the message says
// why, as ingest does.
func TestProbeFilesRefused(t *testing.T) {
	fifo, sparse, _ := userFiles(t)
	data := filepath.Join(t.TempDir(), "data")
	for _, tc := range []struct {
		name, path string
		is         error
		says       string
	}{
		{"fifo", fifo, imageproc.ErrNotRegular, "not a regular file (a named pipe)"},
		{"dev zero", "/dev/zero", imageproc.ErrNotRegular, "not a regular file (a character device)"},
		{"sparse 2 GiB", sparse, imageproc.ErrTooLarge, "the file is 2048 MiB; the limit is 64 MiB"},
	} {
		for _, args := range [][]string{
			{"search", "--data", data, "--purpose", "probe test", tc.path},
			{"rights", "request", "--data", data, "--kind", "access", "--contact", "post", "--selfie", tc.path},
			{"eval", "pairs", "--pairs", tc.path, "--root", t.TempDir()},
			{"eval", "pairs", "--csv", tc.path, "--root", t.TempDir()},
		} {
			t.Run(tc.name+"/"+args[0]+"/"+args[1], func(t *testing.T) {
				_, _, err := runWithin(t, args...)
				if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.says) {
					t.Errorf("error %v; want %v saying %q", err, tc.is, tc.says)
				}
			})
		}
	}
	if _, err := os.Stat(data); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the data directory was opened for a refused probe (%v)", err)
	}
}

// TestUserFileLimitIsIngests: the reader of named files and ingest refuse
// the same sizes.
func TestUserFileLimitIsIngests(t *testing.T) {
	if imageproc.DefaultLimits.MaxBytes != source.DefaultMaxFileBytes {
		t.Errorf("imageproc limit %d, ingest limit %d", imageproc.DefaultLimits.MaxBytes, source.DefaultMaxFileBytes)
	}
}

// TestPrintable: the characters a terminal acts on are escaped, the rest
// of the text is left as it is.
func TestPrintable(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"photos/été 2024/Zoë.jpg", "photos/été 2024/Zoë.jpg"},
		{"a\x1b[31mred\x1b[0m.jpg", `a\x1b[31mred\x1b[0m.jpg`},
		{"two\nlines\tand\rback", `two\nlines\tand\rback`},
		{"bell\a del\x7f c1\u009b", `bell\a del\x7f c1\u009b`},
		{"gpj.\u202eexe", `gpj.\u202eexe`},
		{"bad\xffutf8", `bad\xffutf8`},
		{`back\slash`, `back\slash`},
	} {
		if got := printable(tc.in); got != tc.want {
			t.Errorf("printable(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestEscapedNamesInErrors: a file name holding a terminal escape is
// printed escaped in the error the command ends with.
func TestEscapedNamesInErrors(t *testing.T) {
	_, _, escaped := userFiles(t)
	_, _, err := runWithin(t, "search", "--data", filepath.Join(t.TempDir(), "data"), "--purpose", "p", escaped)
	if err == nil {
		t.Fatal("a FIFO was accepted as a probe")
	}
	shown := printable(err.Error())
	if strings.ContainsRune(shown, 0x1b) || !strings.Contains(shown, `red\x1b[31m\x1b[2J.jpg`) {
		t.Errorf("printed %q", shown)
	}
}

// TestSourceAddRefusesRootAndData: `gabarit source add` refuses / and the
// data directory, with the reason.
func TestSourceAddRefusesRootAndData(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	for _, tc := range []struct{ path, says string }{
		{"/", "--path: the root of the file system (/) cannot be a source"},
		{data, "--path: this is gabarit's data directory"},
		{filepath.Dir(data), "--path: this folder holds gabarit's data directory"},
		{filepath.Join(data, "index"), "--path: this is inside gabarit's data directory"},
	} {
		_, stderr, err := runWithin(t, "source", "add", "--data", data, "--kind", "folder", "--path", tc.path,
			"--controller", "Example Org", "--purpose", "tests", "--legal-basis", "consent", "--art9", "9(2)(a)",
			"--jurisdiction", "FR", "--retention", "30d")
		var ee exitError
		if !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(stderr, tc.says) {
			t.Errorf("source add --path %s: %v, stderr %q; want exit 2 saying %q", tc.path, err, stderr, tc.says)
		}
	}
}

// TestLogsEscapeNames: the commands and the server log with slog's text
// handler, which quotes a value holding control characters: a locator in
// a logged error cannot reach the terminal raw.
func TestLogsEscapeNames(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})) // as main.go and serve.go
	logger.Warn("read image for a crop", "err", errors.New("open photos/a\x1b[2J\u202e.jpg: no such file"))
	if strings.ContainsRune(buf.String(), 0x1b) || !strings.Contains(buf.String(), `a\x1b[2J\u202e.jpg`) {
		t.Errorf("logged %q", buf.String())
	}
}
