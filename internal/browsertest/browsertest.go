// Package browsertest runs the browser tests of the web console: it starts a
// headless Chromium through chromedp, saves screenshots as test artefacts and
// collects the script errors of the page (exceptions, console errors and
// error entries of the browser log, CSP violations included).
package browsertest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// Browser settings of every test.
const (
	// timeout bounds a whole test: browser start, actions and screenshots.
	timeout = 2 * time.Minute
	// windowWidth and windowHeight are the window of a laptop, in CSS pixels.
	windowWidth, windowHeight = 1366, 900
	// outputTail is how much of the browser's own output a failed start shows, in bytes.
	outputTail = 4 << 10
)

// Chromium returns the browser to run: $GABARIT_CHROMIUM when it is set (a
// path or a command name), else the first of chromium, chromium-browser and
// google-chrome found on PATH. Debian's chromium package provides it
// (scripts/install-deps.sh installs it).
func Chromium() (path string, err error) {
	if env := os.Getenv("GABARIT_CHROMIUM"); env != "" {
		path, err := exec.LookPath(env)
		if err != nil {
			return "", fmt.Errorf("GABARIT_CHROMIUM: %w", err)
		}
		return path, nil
	}
	names := []string{"chromium", "chromium-browser", "google-chrome"}
	for _, name := range names {
		if path, err := exec.LookPath(name); err == nil {
			return path, nil
		}
	}
	return "", fmt.Errorf("none of %s on PATH, and GABARIT_CHROMIUM is not set: %w", strings.Join(names, ", "), exec.ErrNotFound)
}

// New starts a headless Chromium for the test and returns a chromedp
// context of its first tab, for chromedp.Run and chromedp.Do. The browser
// runs with a fresh profile in a temporary directory, a 1366×900 window and
// viewport, and no sandbox when the test runs as root (as in containers). It
// stops when the test ends, or after two minutes. The page's errors are
// collected from the start (see Errors).
//
// Without a browser the test is skipped, or fails when GABARIT_REQUIRE_BROWSER
// is set (as CI sets it), so that browser tests never pass by skipping there.
// A GABARIT_CHROMIUM that names no executable always fails the test.
func New(t testing.TB) context.Context {
	t.Helper()
	path, err := Chromium()
	if err != nil {
		switch {
		case os.Getenv("GABARIT_CHROMIUM") != "":
			t.Fatalf("browser: %v", err)
		case os.Getenv("GABARIT_REQUIRE_BROWSER") != "":
			t.Fatalf("a browser is required (GABARIT_REQUIRE_BROWSER is set) but none was found: %v; run scripts/install-deps.sh", err)
		default:
			t.Skipf("no browser (%v): install Debian's chromium package (scripts/install-deps.sh), or set GABARIT_REQUIRE_BROWSER=1 to fail instead", err)
		}
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.DisableGPU,
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(windowWidth, windowHeight),
		chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()), // before the cleanup below, so removed after the browser stops
	)
	if os.Geteuid() == 0 {
		// Chromium refuses to start as root with its sandbox on.
		opts = append(opts, chromedp.NoSandbox)
	}
	out := &lockedBuffer{}
	opts = append(opts, chromedp.CombinedOutput(out))

	ctx, cancelTimeout := context.WithTimeout(context.Background(), timeout)
	ctx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	errs := &pageErrors{changed: make(chan struct{})}
	ctx, cancelBrowser := chromedp.NewContext(ctx, chromedp.WithListener(errs.record))
	ctx = context.WithValue(ctx, errorsKey{}, errs)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
		cancelTimeout()
	})

	// Start the browser now, under the test's timeout: the first Run binds
	// the browser's life to its context. Headless Chromium gives the page
	// less than the window (it subtracts a window frame), so set the
	// viewport itself to the window size.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(windowWidth, windowHeight)); err != nil {
		t.Fatalf("start %s: %v\nbrowser output:\n%s", path, err, out.tail(outputTail))
	}
	return ctx
}

// Screenshot saves a full-page PNG of the tab of ctx (a context from New) as
// <TestName>-<name>.png in the artefacts directory: $GABARIT_ARTEFACTS, or
// var/test-artefacts/browser under the repository root. It logs the file's
// path, and fails the test when it cannot take or write the screenshot.
func Screenshot(t testing.TB, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100 means PNG
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	dir, err := artefactsDir()
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(dir, sanitize(t.Name())+"-"+sanitize(name)+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	t.Logf("screenshot %s", path)
}

// Errors returns the script errors that the tab of ctx (a context from New)
// reported so far, oldest first: uncaught exceptions, console.error calls,
// failed console.assert calls and error entries of the browser log, such as
// CSP violations and failed loads. It returns nil for a context that New did
// not make.
func Errors(ctx context.Context) []string {
	errs, _ := ctx.Value(errorsKey{}).(*pageErrors)
	if errs == nil {
		return nil
	}
	return errs.list()
}

// WaitError waits until the tab of ctx (a context from New) reports an
// error, after the first seen ones, that contains want — the browser
// reports errors asynchronously — and returns every error so far. It
// returns an error, with the errors so far, after timeout, when ctx ends or
// for a context New did not make.
func WaitError(ctx context.Context, seen int, want string, timeout time.Duration) ([]string, error) {
	errs, _ := ctx.Value(errorsKey{}).(*pageErrors)
	if errs == nil {
		return nil, errors.New("browsertest: not a context from New")
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		errs.mu.Lock()
		msgs, changed := append([]string(nil), errs.msgs...), errs.changed
		errs.mu.Unlock()
		for _, m := range msgs[min(seen, len(msgs)):] {
			if strings.Contains(m, want) {
				return msgs, nil
			}
		}
		select {
		case <-changed:
		case <-timer.C:
			return msgs, fmt.Errorf("no error containing %q within %v", want, timeout)
		case <-ctx.Done():
			return msgs, ctx.Err()
		}
	}
}

// errorsKey is the context key of the *pageErrors of a tab.
type errorsKey struct{}

// pageErrors collects the error messages of one tab. Its record method runs
// in chromedp's event loop, so it only appends under the lock, and wakes
// the waiters of WaitError by closing changed (then replaced).
type pageErrors struct {
	mu      sync.Mutex
	msgs    []string
	changed chan struct{}
}

func (e *pageErrors) record(ev any) {
	var msg string
	switch ev := ev.(type) {
	case *runtime.EventExceptionThrown:
		msg = exceptionText(ev.ExceptionDetails)
	case *runtime.EventConsoleAPICalled:
		if ev.Type != runtime.ConsoleAPICalledTypeError && ev.Type != runtime.ConsoleAPICalledTypeAssert {
			return
		}
		msg = "console." + string(ev.Type) + ": " + argsText(ev.Args)
		if st := ev.StackTrace; st != nil && len(st.CallFrames) > 0 {
			f := st.CallFrames[0]
			msg += fmt.Sprintf(" (%s:%d)", f.URL, f.LineNumber+1)
		}
	case *log.EventEntryAdded:
		en := ev.Entry
		if en == nil || en.Level != log.EntryLevelError {
			return
		}
		msg = fmt.Sprintf("%s: %s", en.Source, en.Text)
		if en.URL != "" {
			msg += fmt.Sprintf(" (%s)", en.URL)
		}
	default:
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.msgs = append(e.msgs, msg)
	close(e.changed)
	e.changed = make(chan struct{})
}

func (e *pageErrors) list() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.msgs) == 0 {
		return nil
	}
	return append([]string(nil), e.msgs...)
}

// exceptionText renders an uncaught exception as "exception: Uncaught
// Error: message (url:line)", without its stack.
func exceptionText(d *runtime.ExceptionDetails) string {
	if d == nil {
		return "exception"
	}
	text := d.Text
	if obj := d.Exception; obj != nil && obj.Description != "" {
		desc, _, _ := strings.Cut(obj.Description, "\n")
		text += " " + desc
	}
	msg := "exception: " + strings.TrimSpace(text)
	if d.URL != "" {
		msg += fmt.Sprintf(" (%s:%d)", d.URL, d.LineNumber+1)
	}
	return msg
}

// argsText renders the arguments of a console call: strings as they are,
// other values by their description or JSON value.
func argsText(args []*runtime.RemoteObject) string {
	parts := make([]string, 0, len(args))
	for _, a := range args {
		parts = append(parts, valueText(a))
	}
	return strings.Join(parts, " ")
}

func valueText(a *runtime.RemoteObject) string {
	if a == nil {
		return "null"
	}
	if a.Type == runtime.RemoteObjectTypeString {
		var s string
		if err := json.Unmarshal(a.Value, &s); err == nil {
			return s
		}
	}
	switch {
	case a.Description != "":
		return a.Description
	case a.UnserializableValue != "":
		return string(a.UnserializableValue)
	case len(a.Value) > 0:
		return string(a.Value)
	}
	return string(a.Type)
}

// artefactsDir returns $GABARIT_ARTEFACTS, or var/test-artefacts/browser
// under the folder holding go.mod above the working directory.
func artefactsDir() (string, error) {
	if dir := os.Getenv("GABARIT_ARTEFACTS"); dir != "" {
		return dir, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "var", "test-artefacts", "browser"), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory; set GABARIT_ARTEFACTS")
		}
		dir = parent
	}
}

// sanitize makes s safe as part of a file name: every rune other than an
// ASCII letter, digit, '.', '-' or '_' becomes '_' (a subtest's "/" too).
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9', r == '.', r == '-', r == '_':
			return r
		}
		return '_'
	}, s)
}

// lockedBuffer collects the browser's output, which chromedp writes from
// another goroutine.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// tail returns the last n bytes written.
func (b *lockedBuffer) tail(n int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.buf.String()
	if len(s) > n {
		s = s[len(s)-n:]
	}
	return s
}
