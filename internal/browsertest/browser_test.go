package browsertest_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"gabarit/internal/browsertest"
)

// csp is the policy of the test pages: scripts and styles from the page's
// own origin only, as the web console will send.
const csp = "default-src 'self'"

const formPage = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>browsertest</title>
<link rel="stylesheet" href="/app.css">
<script src="/app.js" defer></script>
</head>
<body>
<h1>Browser test page</h1>
<form id="greeting">
  <label for="name">Name</label>
  <input id="name" name="name" type="text" autocomplete="off">
  <button id="greet" type="button">Greet</button>
  <button id="boom" type="button">Throw</button>
</form>
<p id="out">Nobody greeted yet.</p>
</body>
</html>`

const appJS = `"use strict";
document.getElementById("greet").addEventListener("click", () => {
  const name = document.getElementById("name").value;
  document.getElementById("out").textContent = "Hello, " + name + "!";
});
document.getElementById("boom").addEventListener("click", () => {
  console.error("about to throw");
  throw new Error("boom from app.js");
});
`

const appCSS = `body { font-family: "DejaVu Sans", sans-serif; font-size: 18px; margin: 2em; color: #222; }
h1 { font-size: 28px; }
input, button { font: inherit; padding: 0.2em 0.5em; }
#out { font-weight: bold; }
`

// inlinePage has an inline script, which the CSP forbids: the browser must
// not run it and must report the violation.
const inlinePage = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>inline</title></head>
<body>
<p id="out">inline script blocked</p>
<script>document.getElementById("out").textContent = "inline script ran";</script>
</body>
</html>`

// newServer serves the test pages under the CSP.
func newServer(t *testing.T) *httptest.Server {
	t.Helper()
	serve := func(contentType, body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Security-Policy", csp)
			w.Header().Set("Content-Type", contentType)
			_, _ = w.Write([]byte(body)) // the browser's failure shows in the test
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", serve("text/html; charset=utf-8", formPage))
	mux.HandleFunc("GET /inline", serve("text/html; charset=utf-8", inlinePage))
	mux.HandleFunc("GET /app.js", serve("text/javascript; charset=utf-8", appJS))
	mux.HandleFunc("GET /app.css", serve("text/css; charset=utf-8", appCSS))
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// waitErrors waits for an error containing want, failing the test after
// ten seconds.
func waitErrors(t *testing.T, ctx context.Context, want string) []string {
	t.Helper()
	errs, err := browsertest.WaitError(ctx, 0, want, 10*time.Second)
	if err != nil {
		t.Fatalf("%v; errors: %q", err, errs)
	}
	return errs
}

func TestFormWithExternalScript(t *testing.T) {
	srv := newServer(t)
	ctx := browsertest.New(t)

	err := chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS("#name")),
		chromedp.SendKeys(chromedp.CSS("#name"), "Ada"),
		chromedp.Click(chromedp.CSS("#greet")),
	)
	if err != nil {
		t.Fatal(err)
	}
	got, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#out")))
	if err != nil {
		t.Fatal(err)
	}
	if want := "Hello, Ada!"; got != want {
		t.Errorf("#out = %q, want %q", got, want)
	}
	browsertest.Screenshot(t, ctx, "greeted")
	if errs := browsertest.Errors(ctx); len(errs) != 0 {
		t.Errorf("page errors: %q", errs)
	}

	dir := os.Getenv("GABARIT_ARTEFACTS")
	if dir == "" {
		dir = filepath.Join("..", "..", "var", "test-artefacts", "browser")
	}
	png, err := os.ReadFile(filepath.Join(dir, "TestFormWithExternalScript-greeted.png"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(png), "\x89PNG\r\n\x1a\n") {
		t.Errorf("screenshot is not a PNG (starts %q)", png[:min(8, len(png))])
	}
}

func TestErrorsReportsCSPViolation(t *testing.T) {
	srv := newServer(t)
	ctx := browsertest.New(t)

	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/inline")); err != nil {
		t.Fatal(err)
	}
	errs := waitErrors(t, ctx, "Content Security Policy")
	t.Logf("errors: %q", errs)
	got, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#out")))
	if err != nil {
		t.Fatal(err)
	}
	if want := "inline script blocked"; got != want {
		t.Errorf("#out = %q, want %q: the CSP did not block the inline script", got, want)
	}
}

func TestErrorsReportsExceptionAndConsoleError(t *testing.T) {
	srv := newServer(t)
	ctx := browsertest.New(t)

	err := chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/"),
		chromedp.Click(chromedp.CSS("#boom")),
	)
	if err != nil {
		t.Fatal(err)
	}
	waitErrors(t, ctx, "boom from app.js")
	errs := waitErrors(t, ctx, "about to throw")
	t.Logf("errors: %q", errs)
	if len(errs) != 2 {
		t.Errorf("errors = %q, want the console.error and the exception", errs)
	}
}

func TestErrorsOfOtherContext(t *testing.T) {
	if errs := browsertest.Errors(context.Background()); errs != nil {
		t.Errorf("Errors(context.Background()) = %q, want nil", errs)
	}
}

func TestChromiumFromEnv(t *testing.T) {
	sh, err := filepath.EvalSymlinks("/bin/sh")
	if err != nil {
		t.Skipf("no /bin/sh to stand in for a browser executable (%v): the environment variable is not checked", err)
	}
	t.Setenv("GABARIT_CHROMIUM", sh)
	if got, err := browsertest.Chromium(); err != nil || got != sh {
		t.Errorf("Chromium() = %q, %v; want %q", got, err, sh)
	}
	t.Setenv("GABARIT_CHROMIUM", filepath.Join(t.TempDir(), "no-such-browser"))
	if got, err := browsertest.Chromium(); err == nil {
		t.Errorf("Chromium() = %q with a missing GABARIT_CHROMIUM, want an error", got)
	}
}
