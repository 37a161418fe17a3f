package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"gabarit/internal/openset"
	"image"
	"image/color"
	"image/png"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gabarit/internal/app"
	"gabarit/internal/config"
	"gabarit/internal/face"
	"gabarit/internal/imageproc"
	"gabarit/internal/passwd"
	"gabarit/internal/store"
	_ "gabarit/internal/store/drivers" // the tests open stores
)

// fakeModel stands in for the face path in tests of the logic around it
// (routes, roles, errors): every image has one face, at the same place,
// whose template is derived from the image's bytes, so that the same photo
// matches itself and different photos do not. A photo whose pixels are all
// black has no face. The real models are tested in real_test.go.
type fakeModel struct{}

func (fakeModel) Analyze(_ context.Context, data []byte) (face.Analysis, error) {
	d, err := imageproc.Decode(data, imageproc.DecodeOptions{})
	if err != nil {
		return face.Analysis{}, err
	}
	an := face.Analysis{Width: d.Width, Height: d.Height}
	if !bytes.ContainsFunc(d.Img.Pix, func(r rune) bool { return r != 0 }) {
		return an, nil
	}
	sum := sha256.Sum256(data)
	v := make([]float32, fakeDim)
	for i := range v {
		v[i] = float32(sum[i]) - 127.5
	}
	an.Faces = []face.Face{{Box: face.Box{X: 4, Y: 4, W: 24, H: 24}, Score: 0.99, Quality: 0.9, Embedding: face.Normalize(v)}}
	return an, nil
}

func (fakeModel) AnalyzeFrame(context.Context, *imageproc.RGB) (face.Analysis, error) {
	return face.Analysis{}, errors.New("fake model: no video")
}

const fakeDim = 16

func (fakeModel) ModelID() string     { return "fake-16" }
func (fakeModel) Dim() int            { return fakeDim }
func (fakeModel) SamePerson() float64 { return 0.9 }

// OpenSet is a decision model for fakeModel's random-like templates:
// different photos' templates have cosines near 0.
func (fakeModel) OpenSet() (*openset.Decider, error) {
	tail, err := openset.New([]openset.TailPoint{{Score: 0.2, FAR: 1e-2}, {Score: 0.4, FAR: 1e-5}}, -15)
	if err != nil {
		return nil, err
	}
	return &openset.Decider{Single: tail, Group: tail, Link: 0.9, FloorFAR: 1e-2, MinQuality: 0}, nil
}

// testPNG is a small valid image of one colour (black: no face for fakeModel).
func testPNG(t testing.TB, c color.RGBA) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 32, 32))
	for i := 0; i < len(img.Pix); i += 4 {
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = c.R, c.G, c.B, 255
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// testEnv is a server on a real data directory (SQLite on disk, keyring,
// vault, flat index) behind httptest.
type testEnv struct {
	t      testing.TB
	dir    string
	data   *app.Data
	srv    *Server
	ts     *httptest.Server
	photos string // a folder of photos to declare as a source
}

// newTestEnv starts a server on model (fakeModel{} when nil).
func newTestEnv(t testing.TB, model app.Model) *testEnv {
	t.Helper()
	return newTestEnvConfig(t, model, nil)
}

// newTestEnvConfig is newTestEnv with set, when not nil, changing the
// server's Config before it starts.
func newTestEnvConfig(t testing.TB, model app.Model, set func(*Config)) *testEnv {
	t.Helper()
	if model == nil {
		model = fakeModel{}
	}
	ctx := context.Background()
	dir := t.TempDir()
	d, err := app.OpenData(ctx, config.Config{DataDir: filepath.Join(dir, "data"), Index: app.IndexFlat}, true)
	if err != nil {
		t.Fatal(err)
	}
	h, err := d.OpenIndex(ctx, model.ModelID(), model.Dim())
	if err != nil {
		t.Fatal(err)
	}
	v, err := d.Vault(ctx)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	cfg := Config{Data: d, Model: model, Index: h, Vault: v, Log: log, PurgeEvery: -1}
	if set != nil {
		set(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := &testEnv{t: t, dir: dir, data: d, srv: srv, photos: filepath.Join(dir, "photos")}
	e.ts = httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		e.ts.Close()
		srv.jobs.stop()
		h.Close()
		d.Close()
	})
	if err := os.MkdirAll(e.photos, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, c := range []color.RGBA{{200, 10, 10, 0}, {10, 200, 10, 0}, {10, 10, 200, 0}} {
		if err := os.WriteFile(filepath.Join(e.photos, fmt.Sprintf("p%d.png", i)), testPNG(t, c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

const testPassword = "a long enough password"

// addUser registers a console user with roles and testPassword.
func (e *testEnv) addUser(name string, roles ...store.Role) {
	e.t.Helper()
	ctx := context.Background()
	if err := e.data.DB.AddUser(ctx, name, roles, "test"); err != nil {
		e.t.Fatal(err)
	}
	h, err := passwd.Hash(testPassword)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.data.DB.SetPassword(ctx, name, h, "test"); err != nil {
		e.t.Fatal(err)
	}
}

// client is an HTTP client of the test server: anonymous, a console
// session (cookie + CSRF token) or a bearer token.
type client struct {
	e      *testEnv
	hc     *http.Client
	csrf   string
	bearer string
}

func (e *testEnv) anon() *client {
	jar, _ := cookiejar.New(nil)
	return &client{e: e, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// login signs name in through the API and returns its session client.
func (e *testEnv) login(name string) *client {
	e.t.Helper()
	c := e.anon()
	st, body := c.json("POST", "/api/v1/session", map[string]string{"name": name, "password": testPassword})
	if st != http.StatusOK {
		e.t.Fatalf("login %s: %d %s", name, st, body)
	}
	var s struct {
		CSRF string `json:"csrf_token"`
	}
	if err := json.Unmarshal(body, &s); err != nil || s.CSRF == "" {
		e.t.Fatalf("login %s: no csrf token in %s", name, body)
	}
	c.csrf = s.CSRF
	return c
}

// token creates an API token for name (through its session) and returns a
// bearer client.
func (e *testEnv) token(name string) *client {
	e.t.Helper()
	st, body := e.login(name).json("POST", "/api/v1/tokens", map[string]any{"label": "test", "expires_in_days": 1})
	if st != http.StatusCreated {
		e.t.Fatalf("token for %s: %d %s", name, st, body)
	}
	var tok struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(body, &tok); err != nil {
		e.t.Fatal(err)
	}
	c := e.anon()
	c.bearer = tok.Token
	return c
}

// response is an answer to a test request.
type response struct {
	status int
	body   string
	header http.Header
}

// send sends a request, with the client's CSRF header or bearer token when
// it has one, without following redirects.
func (c *client) send(method, path, contentType string, body io.Reader) response {
	c.e.t.Helper()
	req, err := http.NewRequest(method, c.e.ts.URL+path, body)
	if err != nil {
		c.e.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.csrf != "" {
		req.Header.Set("X-CSRF-Token", c.csrf)
	}
	if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.e.t.Fatal(err)
	}
	return response{resp.StatusCode, string(b), resp.Header}
}

// do sends a request and returns the status and body.
func (c *client) do(method, path, contentType string, body io.Reader) (int, []byte) {
	c.e.t.Helper()
	r := c.send(method, path, contentType, body)
	return r.status, []byte(r.body)
}

// json sends v as a JSON body (nil: no body).
func (c *client) json(method, path string, v any) (int, []byte) {
	c.e.t.Helper()
	if v == nil {
		return c.do(method, path, "", nil)
	}
	b, err := json.Marshal(v)
	if err != nil {
		c.e.t.Fatal(err)
	}
	return c.do(method, path, "application/json", bytes.NewReader(b))
}

// multipart sends fields and files (field name → contents) as multipart/form-data.
func (c *client) multipart(path string, fields map[string]string, files map[string][][]byte) (int, []byte) {
	c.e.t.Helper()
	v := url.Values{}
	for k, f := range fields {
		v.Set(k, f)
	}
	r := c.upload(path, v, files)
	return r.status, []byte(r.body)
}

// upload posts fields and files as multipart/form-data.
func (c *client) upload(path string, fields url.Values, files map[string][][]byte) response {
	c.e.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, vs := range fields {
		for _, v := range vs {
			_ = mw.WriteField(k, v)
		}
	}
	for k, list := range files {
		for i, b := range list {
			fw, err := mw.CreateFormFile(k, fmt.Sprintf("%s%d.png", k, i))
			if err != nil {
				c.e.t.Fatal(err)
			}
			_, _ = fw.Write(b)
		}
	}
	_ = mw.Close()
	return c.send("POST", path, mw.FormDataContentType(), &buf)
}

// declareSource declares e.photos as a folder source through the API as
// operator c and returns its id.
func (e *testEnv) declareSource(c *client) int64 {
	e.t.Helper()
	st, body := c.json("POST", "/api/v1/sources", app.Declaration{Kind: "folder", Path: e.photos, Controller: "Test controller",
		Purpose: "tests", LegalBasis: "consent", Art9: "explicit-consent", Jurisdiction: "FR", Retention: "30d"})
	if st != http.StatusCreated {
		e.t.Fatalf("declare source: %d %s", st, body)
	}
	var out struct {
		ID int64 `json:"id"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		e.t.Fatal(err)
	}
	return out.ID
}

// ingest runs an ingest job of source id as operator c and waits for it to end.
func (e *testEnv) ingest(c *client, id int64) job {
	e.t.Helper()
	st, body := c.json("POST", fmt.Sprintf("/api/v1/sources/%d/ingest", id), nil)
	if st != http.StatusAccepted {
		e.t.Fatalf("start ingest: %d %s", st, body)
	}
	j := decode[job](e.t, body)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := e.srv.jobs.wait(ctx, j.ID); err != nil {
		e.t.Fatalf("job %d: %v", j.ID, err)
	}
	st, body = c.json("GET", fmt.Sprintf("/api/v1/jobs/%d", j.ID), nil)
	if st != http.StatusOK {
		e.t.Fatalf("job: %d %s", st, body)
	}
	return decode[job](e.t, body)
}

// decode unmarshals an answer, failing the test on error.
func decode[T any](t testing.TB, body []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("decode %s: %v", strings.TrimSpace(string(body)), err)
	}
	return v
}

// eventually waits until cond holds, checking it every few milliseconds,
// and fails the test when it does not within timeout: for conditions that
// nothing announces (a job's progress, a clock passing a deadline).
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(timeout)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("still not %s after %v", what, timeout)
		}
	}
}

// registerRights registers a request of kind with selfies as DPO c.
func (e *testEnv) registerRights(c *client, kind string, selfies [][]byte) int64 {
	e.t.Helper()
	st, body := c.multipart("/api/v1/rights", map[string]string{"kind": kind, "contact": "person@example.org"},
		map[string][][]byte{"selfie": selfies})
	if st != http.StatusCreated {
		e.t.Fatalf("register %s: %d %s", kind, st, body)
	}
	return decode[app.RequestView](e.t, body).ID
}

func (e *testEnv) findCandidates(c *client, id int64) app.ReviewView {
	e.t.Helper()
	st, body := c.json("POST", fmt.Sprintf("/api/v1/rights/%d/candidates", id), nil)
	f := decode[foundJSON](e.t, body)
	if st != http.StatusOK || f.Refused || f.Review == nil {
		e.t.Fatalf("candidates of %d: %d %s", id, st, body)
	}
	return *f.Review
}

func (e *testEnv) actOn(c *client, id int64, selected []int64) outcomeJSON {
	e.t.Helper()
	if st, body := c.json("POST", fmt.Sprintf("/api/v1/rights/%d/review", id), map[string]any{"selected": selected}); st != http.StatusOK {
		e.t.Fatalf("review: %d %s", st, body)
	}
	if st, body := c.json("POST", fmt.Sprintf("/api/v1/rights/%d/identity", id),
		map[string]string{"method": "id-document", "note": "identity card seen"}); st != http.StatusOK {
		e.t.Fatalf("identity: %d %s", st, body)
	}
	st, body := c.json("POST", fmt.Sprintf("/api/v1/rights/%d/process", id), map[string]any{"confirm_faces": len(selected)})
	if st != http.StatusOK {
		e.t.Fatalf("process: %d %s", st, body)
	}
	return decode[outcomeJSON](e.t, body)
}
