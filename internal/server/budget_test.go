package server

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"gabarit/internal/face"
	"gabarit/internal/imageproc"
	"gabarit/internal/imageproc/bombtest"
	"gabarit/internal/membudget"
	"gabarit/internal/pipeline"
)

// noFaceDetector finds no face.
type noFaceDetector struct{}

func (noFaceDetector) InputSize() (int, int) { return 0, 0 }
func (noFaceDetector) HasLandmarks() bool    { return true }
func (noFaceDetector) Detect(ctx context.Context, _ *imageproc.RGB) ([]face.Detection, error) {
	return nil, ctx.Err()
}

// budgetModel is the face path on a real pipeline with a memory budget:
// each photo reserves its memory, is decoded and analysed (no face is
// found). The other methods are fakeModel's.
type budgetModel struct {
	fakeModel
	p *pipeline.Pipeline
}

func (m budgetModel) Analyze(ctx context.Context, data []byte) (face.Analysis, error) {
	r, err := m.p.ProcessBytes(ctx, data)
	if err != nil {
		return face.Analysis{}, err
	}
	return face.Analysis{Width: r.Width, Height: r.Height, Faces: r.Faces}, nil
}

func newBudgetEnv(t *testing.T, size int64, wait time.Duration) (*testEnv, *membudget.Budget) {
	t.Helper()
	budget := membudget.New(size)
	p, err := pipeline.New(noFaceDetector{}, nil, nil, pipeline.Config{SkipEmbedding: true, Budget: budget})
	if err != nil {
		t.Fatal(err)
	}
	e := newTestEnvConfig(t, budgetModel{p: p}, func(c *Config) {
		c.Budget, c.BudgetWait = budget, wait
		c.Analyses = 8 // the budget, not the slots, is what holds them back
	})
	return e, budget
}

type apiErrorJSON struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// TestPortalBombsWithinBudget sends eight anonymous portal requests at once,
// each with a 16-bit deflate TIFF selfie (a 1.4 MB file that needs about
// 80 MiB to decode and analyse) to a server whose budget holds one: they
// are decoded one after the other, never more than the budget at once, and
// each gets its answer (no face), none an error.
func TestPortalBombsWithinBudget(t *testing.T) {
	const size = 100 << 20
	e, budget := newBudgetEnv(t, size, time.Minute)
	bomb := bombtest.TIFF16(1200, 1000)
	var wg sync.WaitGroup
	type answer struct {
		status int
		body   []byte
	}
	answers := make([]answer, 8)
	for i := range answers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, body := e.anon().multipart("/api/v1/portal/requests", map[string]string{"kind": "access", "contact": "person@example.org"},
				map[string][][]byte{"selfie": {bomb}})
			answers[i] = answer{st, body}
		}()
	}
	wg.Wait()
	for i, a := range answers {
		if a.status != http.StatusUnprocessableEntity || decode[apiErrorJSON](t, a.body).Code != errNoFace.Code {
			t.Errorf("request %d: %d %s, want 422 no_face", i, a.status, a.body)
		}
	}
	hw := budget.HighWater()
	if hw > size || hw < 60<<20 {
		t.Errorf("high-water mark %d MiB, want one bomb's reservation, at most the budget (%d MiB)", hw>>20, size>>20)
	}
	if n := budget.InUse(); n != 0 {
		t.Errorf("%d bytes still reserved", n)
	}
}

// TestBudgetRefusals checks the server's two answers when the budget
// cannot take a photo: 503 busy, with a message that says to try again,
// when its memory is not free within Config.BudgetWait; 422 bad_image,
// with the numbers, when it needs more than the whole budget (and, for the
// selfie check, an unusable photo that says why).
func TestBudgetRefusals(t *testing.T) {
	const size = 100 << 20
	e, budget := newBudgetEnv(t, size, 10*time.Millisecond)
	fits := bombtest.TIFF16(1200, 1000)
	huge := bombtest.TIFF16(4000, 3000)
	portal := func(photo []byte) (int, apiErrorJSON) {
		st, body := e.anon().multipart("/api/v1/portal/requests", map[string]string{"kind": "access", "contact": "person@example.org"},
			map[string][][]byte{"selfie": {photo}})
		return st, decode[apiErrorJSON](t, body)
	}

	hold, err := budget.Acquire(context.Background(), 90<<20)
	if err != nil {
		t.Fatal(err)
	}
	st, ae := portal(fits)
	if st != http.StatusServiceUnavailable || ae.Code != "busy" || !strings.Contains(ae.Message, "try again in a minute") {
		t.Errorf("while the budget is held: %d %+v, want 503 busy", st, ae)
	}
	hold()
	if st, ae = portal(fits); st != http.StatusUnprocessableEntity || ae.Code != errNoFace.Code {
		t.Errorf("once it is free: %d %+v, want the analysis's answer (no face)", st, ae)
	}

	st, ae = portal(huge)
	if st != http.StatusUnprocessableEntity || ae.Code != "bad_image" ||
		!strings.Contains(ae.Message, "(4000×3000 pixels) would take") || !strings.Contains(ae.Message, "the limit is 68 MiB") {
		t.Errorf("over the whole budget: %d %+v, want 422 bad_image with the numbers", st, ae)
	}
	st, body := e.anon().multipart("/api/v1/portal/face-check", nil, map[string][][]byte{"selfie": {huge}})
	if j := decode[faceCheckJSON](t, body); st != http.StatusOK || j.Usable || !strings.Contains(j.Message, "would take") {
		t.Errorf("face check: %d %s, want unusable with the reason", st, body)
	}
	if n := budget.InUse(); n != 0 {
		t.Errorf("%d bytes still reserved", n)
	}
}
