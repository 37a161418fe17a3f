package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gabarit/internal/app"
	"gabarit/internal/face"
	"gabarit/internal/store"
)

// fakeClock is a clock a test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// heldAnalysis is an analysis with one face and its template, as the
// cache holds it.
func heldAnalysis() face.Analysis {
	return face.Analysis{Width: 100, Height: 80, Faces: []face.Face{{Box: face.Box{X: 1, Y: 2, W: 30, H: 30},
		Embedding: face.Normalize([]float32{1, 2, 3, 4})}}}
}

func TestProbeCache(t *testing.T) {
	t.Parallel()
	newCache := func(maxItems int, maxBytes int64) (*probeCache, *fakeClock) {
		clk := &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
		return newProbeCache(10*time.Minute, maxItems, maxBytes, clk.now), clk
	}
	zeroed := func(h *heldProbe, photo []byte, emb []float32) bool {
		return !slices.ContainsFunc(photo, func(b byte) bool { return b != 0 }) &&
			!slices.ContainsFunc(emb, func(v float32) bool { return v != 0 }) && h.photo == nil
	}

	t.Run("one search takes it, once", func(t *testing.T) {
		t.Parallel()
		c, _ := newCache(8, 1<<20)
		photo := []byte("the photo's bytes")
		id := c.put("ivan", photo, heldAnalysis())
		if len(id) != 32 {
			t.Fatalf("handle %q, want 32 hex digits", id)
		}
		if id2 := c.put("ivan", []byte("another photo"), heldAnalysis()); id2 == id {
			t.Fatal("two photos got the same handle")
		}
		h, ok := c.take("ivan", id)
		if !ok || string(h.photo) != "the photo's bytes" || len(h.an.Faces) != 1 || h.an.Width != 100 {
			t.Fatalf("take = %v, %+v", ok, h)
		}
		if _, ok := c.take("ivan", id); ok {
			t.Error("a handle served a second search")
		}
		emb := h.an.Faces[0].Embedding
		h.wipe()
		if !zeroed(h, photo, emb) {
			t.Errorf("after wipe: photo %q, template %v", photo, emb)
		}
	})

	t.Run("bound to its user", func(t *testing.T) {
		t.Parallel()
		c, _ := newCache(8, 1<<20)
		id := c.put("ivan", []byte("photo"), heldAnalysis())
		if _, ok := c.take("mallory", id); ok {
			t.Fatal("another user took the photo")
		}
		if _, ok := c.take("ivan", "not-a-handle"); ok {
			t.Fatal("an unknown handle gave a photo")
		}
		if _, ok := c.take("ivan", id); !ok {
			t.Fatal("another user's attempt dropped the owner's photo")
		}
	})

	t.Run("expires", func(t *testing.T) {
		t.Parallel()
		c, clk := newCache(8, 1<<20)
		photo := []byte("photo to expire")
		an := heldAnalysis()
		emb := an.Faces[0].Embedding
		id := c.put("ivan", photo, an)
		early := c.put("ivan", []byte("an early photo"), heldAnalysis())
		clk.add(9 * time.Minute)
		late := c.put("ivan", []byte("a later photo"), heldAnalysis())
		clk.add(time.Minute)
		if _, ok := c.take("ivan", id); ok {
			t.Fatal("an expired photo was taken")
		}
		if _, ok := c.take("ivan", early); ok {
			t.Fatal("an expired photo was taken")
		}
		if slices.ContainsFunc(photo, func(b byte) bool { return b != 0 }) || slices.ContainsFunc(emb, func(v float32) bool { return v != 0 }) {
			t.Errorf("an expired photo is not zeroed: %q %v", photo, emb)
		}
		if n, _ := c.held(); n != 1 {
			t.Errorf("%d photos held, want 1 (the one not expired)", n)
		}
		if _, ok := c.take("ivan", late); !ok {
			t.Error("a photo was dropped before its time")
		}
		// The timer drops expired photos even when nobody calls.
		c.put("ivan", []byte("left alone"), heldAnalysis())
		clk.add(time.Hour)
		c.expire()
		if n, b := c.held(); n != 0 || b != 0 {
			t.Errorf("after expiry: %d photos, %d bytes held", n, b)
		}
	})

	t.Run("bounded", func(t *testing.T) {
		t.Parallel()
		c, _ := newCache(3, 1<<20)
		var ids []string
		var photos [][]byte
		for i := range 5 {
			p := bytes.Repeat([]byte{byte(i + 1)}, 100)
			photos = append(photos, p)
			ids = append(ids, c.put("ivan", p, heldAnalysis()))
		}
		if n, _ := c.held(); n != 3 {
			t.Fatalf("%d photos held, want at most 3", n)
		}
		for i, id := range ids {
			_, ok := c.take("ivan", id)
			if ok != (i >= 2) {
				t.Errorf("photo %d held: %v; the oldest go first", i, ok)
			}
			if i < 2 && slices.ContainsFunc(photos[i], func(b byte) bool { return b != 0 }) {
				t.Errorf("evicted photo %d is not zeroed", i)
			}
		}

		c, _ = newCache(100, 1000)
		a := c.put("ivan", make([]byte, 400), heldAnalysis())
		b := c.put("ivan", make([]byte, 400), heldAnalysis())
		if n, size := c.held(); n != 1 || size > 1000 {
			t.Errorf("%d photos, %d bytes held, want 1 under 1000", n, size)
		}
		if _, ok := c.take("ivan", a); ok {
			t.Error("the older photo was kept over the byte limit")
		}
		if _, ok := c.take("ivan", b); !ok {
			t.Error("the newer photo was not kept")
		}
		if id := c.put("ivan", make([]byte, 2000), heldAnalysis()); id != "" {
			t.Error("a photo larger than the whole cache was kept")
		}
		if n, size := c.held(); n != 0 || size != 0 {
			t.Errorf("%d photos, %d bytes held after taking them all", n, size)
		}
	})
}

// rowModel is fakeModel that counts its analyses and finds, in a photo
// wider than tall, three faces in a row, detected from right to left.
type rowModel struct {
	fakeModel
	n *atomic.Int64
}

func (m rowModel) Analyze(ctx context.Context, data []byte) (face.Analysis, error) {
	m.n.Add(1)
	an, err := m.fakeModel.Analyze(ctx, data)
	if err != nil || len(an.Faces) == 0 || an.Width <= an.Height {
		return an, err
	}
	one := an.Faces[0]
	an.Faces = make([]face.Face, 3)
	for i := range an.Faces {
		f := one
		f.Box = face.Box{X: float64(an.Width*(7-3*i)/10 - 20), Y: 20, W: 60, H: 60}
		f.Score = 0.99 - 0.01*float64(i)
		emb := slices.Clone(one.Embedding)
		emb[i] = -emb[i]
		f.Embedding = face.Normalize(emb)
		an.Faces[i] = f
	}
	return an, nil
}

// rowPhoto is a 400×120 PNG whose left, middle and right thirds differ, so
// that the faces' thumbnails differ.
func rowPhoto(t *testing.T) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 400, 120))
	for y := range 120 {
		for x := range 400 {
			img.Set(x, y, []color.RGBA{{200, 30, 30, 255}, {30, 200, 30, 255}, {30, 30, 200, 255}}[x*3/400])
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestDetectThenSearch: the detect step answers the faces in reading order
// with their thumbnails and a handle on the photo; the search sent with the
// handle alone does not analyse the photo again and is audited exactly as
// one sent with the photo; the handle serves one search, for its user
// only, for ten minutes, and a search whose handle is gone is refused as
// probe_gone unless the photo comes with it.
func TestDetectThenSearch(t *testing.T) {
	n := new(atomic.Int64)
	e := newTestEnv(t, rowModel{n: n})
	clk := &fakeClock{t: time.Now()}
	e.srv.probes.now = clk.now
	e.addUser("ivan", store.RoleInvestigator)
	e.addUser("irene", store.RoleInvestigator)
	ivan, irene := e.login("ivan"), e.login("irene")
	photo := rowPhoto(t)

	detect := func(c *client) detectJSON {
		t.Helper()
		st, body := c.multipart("/api/v1/detect", nil, map[string][][]byte{"photo": {photo}})
		if st != http.StatusOK {
			t.Fatalf("detect: %d %s", st, body)
		}
		return decode[detectJSON](t, body)
	}
	searchWith := func(c *client, fields map[string]string, withPhoto bool) (int, []byte) {
		t.Helper()
		fields["purpose"], fields["case"], fields["face"] = "a witness in a group photo", "C-7", "0"
		var files map[string][][]byte
		if withPhoto {
			files = map[string][][]byte{"photo": {photo}}
		}
		return c.multipart("/api/v1/searches", fields, files)
	}

	// The faces in reading order, each with its thumbnail.
	d := detect(ivan)
	if len(d.Faces) != 3 || d.Probe == "" {
		t.Fatalf("detect = %+v", d)
	}
	var thumbs []string
	for i, f := range d.Faces {
		if f.Index != i {
			t.Errorf("face %d has index %d", i, f.Index)
		}
		if i > 0 && f.Box[0] <= d.Faces[i-1].Box[0] {
			t.Errorf("faces not left to right: %v", d.Faces)
		}
		jpg, ok := strings.CutPrefix(f.Thumb, "data:image/jpeg;base64,")
		raw, err := base64.StdEncoding.DecodeString(jpg)
		if !ok || err != nil {
			t.Fatalf("face %d thumbnail %.40q: %v", i, f.Thumb, err)
		}
		im, err := jpeg.Decode(bytes.NewReader(raw))
		if err != nil || im.Bounds().Dx() > thumbSide || im.Bounds().Dy() > thumbSide {
			t.Fatalf("face %d thumbnail: %v %v", i, err, im.Bounds())
		}
		// The left face's thumbnail is red, the right one's blue.
		r, g, b, _ := im.At(im.Bounds().Dx()/2, im.Bounds().Dy()/2).RGBA()
		if want := [3]bool{r > b && r > g, g > r && g > b, b > r && b > g}; !want[i] {
			t.Errorf("face %d thumbnail's centre is %d,%d,%d: not the face's third of the photo", i, r>>8, g>>8, b>>8)
		}
		thumbs = append(thumbs, f.Thumb)
	}
	if analysed := n.Load(); analysed != 1 {
		t.Fatalf("%d analyses for one detect", analysed)
	}

	// Another investigator cannot use the handle: it is as if gone, and
	// the owner's handle is still good.
	st, body := searchWith(irene, map[string]string{"probe": d.Probe}, false)
	if ae := decode[apiError](t, body); st != http.StatusGone || ae.Code != "probe_gone" {
		t.Fatalf("another user's handle: %d %s", st, body)
	}

	// The search by handle: no second analysis.
	st, body = searchWith(ivan, map[string]string{"probe": d.Probe}, false)
	if st != http.StatusOK {
		t.Fatalf("search by handle: %d %s", st, body)
	}
	if analysed := n.Load(); analysed != 1 {
		t.Errorf("%d analyses for a detect and a search by handle, want 1", analysed)
	}
	byHandle := decode[app.SearchView](t, body)
	if byHandle.ProbeFaces != 3 || byHandle.ProbeFace == nil || byHandle.ProbeFace.Index != 0 || byHandle.ProbeFace.Box != d.Faces[0].Box {
		t.Errorf("searched %+v, want face 0 of 3 at %v (the leftmost)", byHandle.ProbeFace, d.Faces[0].Box)
	}

	// The handle served its search.
	st, body = searchWith(ivan, map[string]string{"probe": d.Probe}, false)
	if ae := decode[apiError](t, body); st != http.StatusGone || ae.Code != "probe_gone" || strings.Contains(ae.Message, "probe_gone") {
		t.Fatalf("a used handle: %d %s", st, body)
	}
	// With the photo as well, a gone handle falls back on the photo, and
	// the search is audited exactly as the one by handle.
	st, body = searchWith(ivan, map[string]string{"probe": d.Probe}, true)
	if st != http.StatusOK {
		t.Fatalf("fallback on the photo: %d %s", st, body)
	}
	byPhoto := decode[app.SearchView](t, body)
	if analysed := n.Load(); analysed != 2 {
		t.Errorf("%d analyses, want 2 (the fallback analyses the photo)", analysed)
	}
	ctx := context.Background()
	recs := make([]store.Search, 2)
	audits := make([]store.AuditEntry, 2)
	for i, v := range []app.SearchView{byHandle, byPhoto} {
		var err error
		if recs[i], err = e.data.DB.Search(ctx, v.SearchID); err != nil {
			t.Fatal(err)
		}
		entries, err := e.data.DB.AuditEntries(ctx, v.AuditID, v.AuditID)
		if err != nil || len(entries) != 1 {
			t.Fatalf("audit entry %d: %v %v", v.AuditID, entries, err)
		}
		audits[i] = entries[0]
	}
	if recs[0].ProbeSHA256 != sha256.Sum256(photo) {
		t.Errorf("the search by handle recorded probe hash %x, want the photo's", recs[0].ProbeSHA256)
	}
	if !bytes.Equal(audits[0].Detail, audits[1].Detail) || audits[0].Action != audits[1].Action || audits[0].Actor != audits[1].Actor {
		t.Errorf("audit by handle %s %s\n  by photo %s %s", audits[0].Action, audits[0].Detail, audits[1].Action, audits[1].Detail)
	}
	if fmt.Sprint(recs[0].ProbeFace) != fmt.Sprint(recs[1].ProbeFace) || len(recs[0].ProbeCrop) == 0 || len(recs[1].ProbeCrop) == 0 {
		t.Errorf("probe face by handle %+v (crop %d bytes), by photo %+v (crop %d bytes)",
			recs[0].ProbeFace, len(recs[0].ProbeCrop), recs[1].ProbeFace, len(recs[1].ProbeCrop))
	}
	crops := make([][]byte, 2)
	for i, r := range recs {
		var err error
		if crops[i], err = app.OpenProbeCrop(ctx, e.data.Keys, r); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(crops[0], crops[1]) {
		t.Error("the probe crop kept for the verifiers differs between a search by handle and one by photo")
	}

	// A form refused before the search keeps the handle.
	d = detect(ivan)
	st, body = ivan.multipart("/api/v1/searches", map[string]string{"probe": d.Probe, "k": "many", "purpose": "p"}, nil)
	if st != http.StatusBadRequest {
		t.Fatalf("bad k: %d %s", st, body)
	}
	if st, body = searchWith(ivan, map[string]string{"probe": d.Probe}, false); st != http.StatusOK {
		t.Fatalf("the handle after a refused form: %d %s", st, body)
	}

	// Ten minutes later, the handle is gone.
	d = detect(ivan)
	clk.add(probeTTL)
	st, body = searchWith(ivan, map[string]string{"probe": d.Probe}, false)
	if ae := decode[apiError](t, body); st != http.StatusGone || ae.Code != "probe_gone" {
		t.Fatalf("an expired handle: %d %s", st, body)
	}
	if held, _ := e.srv.probes.held(); held != 0 {
		t.Errorf("%d photos held after their expiry", held)
	}
	if !slices.Equal(thumbs, func() []string {
		var out []string
		for _, f := range d.Faces {
			out = append(out, f.Thumb)
		}
		return out
	}()) {
		t.Error("the same photo gave other thumbnails")
	}
}
