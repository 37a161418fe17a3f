//go:build onnx

package server

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/chromedp/chromedp"
	"golang.org/x/image/tiff"

	"gabarit/internal/app"
	"gabarit/internal/browsertest"
	"gabarit/internal/face"
	"gabarit/internal/imageproc"
	"gabarit/internal/modeltest"
	"gabarit/internal/pipeline"
	"gabarit/internal/store"
)

// countedFaces is the real face path, counting the photos it analyses.
type countedFaces struct {
	*app.Faces
	n *atomic.Int64
}

func (m countedFaces) Analyze(ctx context.Context, data []byte) (face.Analysis, error) {
	m.n.Add(1)
	return m.Faces.Analyze(ctx, data)
}

// faceOption is a face offered on the search page, as the page shows it.
type faceOption struct {
	Tag     string     `json:"tag"`
	Label   string     `json:"label"`
	Pressed string     `json:"pressed"`
	Index   string     `json:"index"`
	Thumb   bool       `json:"thumb"` // a thumbnail, loaded
	Box     [4]float64 `json:"box"`   // its box over the photo, in % of the photo
}

// TestBrowserSearchFaces walks the choice of the face to search in a
// headless browser with the real models: a group photo's faces are offered
// as buttons with their thumbnails, named "Face 2 of N" and numbered in
// reading order; the search of the face chosen reuses the detect step (the
// photo is analysed once); a photo larger than the server takes is refused
// before any upload, on the search page and on the portal; and a photo the
// browser cannot show (a TIFF, as a HEIC would be) leaves no broken image
// but a note, while its faces are still found and offered.
func TestBrowserSearchFaces(t *testing.T) {
	dirs := modeltest.Installed(t)
	model, err := app.OpenFaces(context.Background(), app.FaceOptions{Cache: dirs.Root, MinFaceFraction: -1}, pipeline.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { model.Close() })
	analysed := new(atomic.Int64)
	e := newTestEnv(t, countedFaces{model, analysed})
	e.useSamplePhotos(dirs)
	e.addUser("olga", store.RoleOperator)
	e.addUser("ivan", store.RoleInvestigator)
	op := e.token("olga")
	if j := e.ingest(op, e.declareSource(op)); j.State != jobDone {
		t.Fatalf("ingest: %+v", j)
	}
	group := filepath.Join(e.photos, "sample3.jpg")
	tmp := t.TempDir()
	// A photo over the server's limit (20 MiB): its bytes never leave the
	// browser, so a sparse file does.
	big := filepath.Join(tmp, "big.jpg")
	if f, err := os.Create(big); err != nil {
		t.Fatal(err)
	} else if err := f.Truncate(30_000_000); err != nil {
		t.Fatal(err)
	} else if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	// The group photo as a TIFF, which the server reads and Chromium
	// cannot show.
	data, err := os.ReadFile(group)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := imageproc.Decode(data, imageproc.DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tif := filepath.Join(tmp, "group.tif")
	f, err := os.Create(tif)
	if err != nil {
		t.Fatal(err)
	}
	if err := tiff.Encode(f, dec.Img.Image(), &tiff.Options{Compression: tiff.Deflate}); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	ctx := browsertest.New(t)
	b := &browser{t: t, ctx: ctx, base: e.ts.URL}
	options := func() []faceOption {
		t.Helper()
		js := run(b, chromedp.Evaluate[string](`JSON.stringify([...document.querySelectorAll("#face-options .face-option")].map(o => {
			const box = document.querySelector('#boxes .box[data-index="' + o.dataset.index + '"]');
			const img = o.querySelector("img");
			return {tag: o.tagName, label: o.getAttribute("aria-label"), pressed: o.getAttribute("aria-pressed"), index: o.dataset.index,
				thumb: !!img && img.complete && img.naturalWidth > 0,
				box: box ? ["left", "top", "width", "height"].map(k => parseFloat(box.style[k])) : []};
		}))`))
		var out []faceOption
		if err := json.Unmarshal([]byte(js), &out); err != nil {
			t.Fatal(err)
		}
		return out
	}

	b.signIn("ivan")
	b.do(chromedp.Navigate(b.base+"/search"), chromedp.WaitVisible(chromedp.CSS("#dropzone")))
	before := analysed.Load()
	b.do(chromedp.SetUploadFiles(chromedp.CSS("#photo"), []string{group}),
		chromedp.WaitVisible(chromedp.CSS(`#face-options .face-option[data-index="1"]`)))
	b.poll(`[...document.querySelectorAll("#face-options .face-option img")].every(i => i.complete && i.naturalWidth > 0)`)
	opts := options()
	if len(opts) < 2 {
		t.Fatalf("%d faces offered on a group photo", len(opts))
	}
	pressed := 0
	faces := make([]face.Face, len(opts))
	for i, o := range opts {
		if want := fmt.Sprintf("Face %d of %d", i+1, len(opts)); o.Tag != "BUTTON" || o.Label != want || o.Index != fmt.Sprint(i) {
			t.Errorf("option %d: <%s> named %q, index %s; want a button named %q", i, o.Tag, o.Label, o.Index, want)
		}
		if !o.Thumb {
			t.Errorf("option %d has no thumbnail", i)
		}
		if o.Pressed == "true" {
			pressed++
		} else if o.Pressed != "false" {
			t.Errorf("option %d: aria-pressed %q", i, o.Pressed)
		}
		if len(o.Box) != 4 {
			t.Fatalf("option %d has no box over the photo", i)
		}
		// Boxes in % of the photo's width and height: scaled back to
		// the photo's pixels for ReadingOrder.
		faces[i] = face.Face{Box: face.Box{X: o.Box[0] * float64(dec.Width), Y: o.Box[1] * float64(dec.Height),
			W: o.Box[2] * float64(dec.Width), H: o.Box[3] * float64(dec.Height)}, Score: float64(i)}
	}
	if pressed != 1 {
		t.Errorf("%d faces chosen at first, want 1 (the best-quality one)", pressed)
	}
	face.ReadingOrder(faces)
	for i, f := range faces {
		if int(f.Score) != i {
			t.Errorf("the faces are not numbered in reading order: face %d comes %d-th", int(f.Score)+1, i+1)
		}
	}
	if raw, err := model.Analyze(context.Background(), data); err == nil {
		t.Logf("detector's order of %d faces, x: %v", len(raw.Faces), func() (xs []int) {
			for _, f := range raw.Faces {
				xs = append(xs, int(f.Box.X))
			}
			return xs
		}())
	}
	b.do(chromedp.Click(chromedp.CSS(`#face-options .face-option[data-index="1"]`)))
	if o := options(); o[1].Pressed != "true" || o[0].Pressed != "false" {
		t.Errorf("after choosing face 2: pressed %q, %q", o[0].Pressed, o[1].Pressed)
	}
	if sel := run(b, chromedp.Evaluate[string](`document.querySelector("#boxes .box.selected").dataset.index`)); sel != "1" {
		t.Errorf("box %s is selected on the photo, want 1", sel)
	}
	b.shot("search-face-choice")
	b.do(chromedp.SendKeys(chromedp.CSS("#purpose"), "Identify a witness seen in a group photo"),
		chromedp.Click(chromedp.CSS("#search-button")),
		chromedp.WaitVisible(chromedp.CSS("#results .probe-figure figcaption")))
	b.expectText("#results .probe-figure figcaption", fmt.Sprintf("Face searched: 2 of %d (asked)", len(opts)))
	b.expectText("#results .audit-note", "recorded in the audit log")
	if n := analysed.Load() - before; n != 1 {
		t.Errorf("the photo was analysed %d times to find its faces and search one, want once", n)
	}

	// Too large: said next to the input, and nothing is sent.
	before = analysed.Load()
	b.do(chromedp.SetUploadFiles(chromedp.CSS("#photo"), []string{big}))
	b.poll(`!document.querySelector("#photo-size").hidden`)
	b.expectText("#photo-size", "This photo is 30 MB; the limit is 20 MiB.")
	if run(b, chromedp.Evaluate[bool](`!document.querySelector("#preview").hidden`)) {
		t.Error("the preview of the previous photo is still shown")
	}
	b.shot("search-too-large")
	if n := analysed.Load() - before; n != 0 {
		t.Errorf("a photo over the limit was sent: %d analyses", n)
	}

	// No preview: no broken image, a note; the faces are still found
	// and offered with their thumbnails.
	b.do(chromedp.SetUploadFiles(chromedp.CSS("#photo"), []string{tif}),
		chromedp.WaitVisible(chromedp.CSS("#no-preview")),
		chromedp.WaitVisible(chromedp.CSS(`#face-options .face-option[data-index="1"]`)))
	b.poll(`[...document.querySelectorAll("#face-options .face-option img")].every(i => i.complete && i.naturalWidth > 0)`)
	b.expectText("#no-preview", "No preview for this file; it will be checked when you send it.")
	if run(b, chromedp.Evaluate[bool](`!document.querySelector("#stage").hidden || !document.querySelector("#photo-size").hidden`)) {
		t.Error("a broken preview, or the size note of the previous file, is still shown")
	}
	if n := len(options()); n != len(opts) {
		t.Errorf("%d faces offered for the TIFF, %d for the JPEG", n, len(opts))
	}
	b.shot("search-no-preview")
	b.signOut()

	// The portal refuses the large photo before sending it too.
	b.do(chromedp.Navigate(b.base+"/portal"),
		chromedp.WaitVisible(chromedp.CSS("#portal-form")),
		chromedp.SetUploadFiles(chromedp.CSS("#selfie"), []string{big}))
	b.poll(`!document.querySelector("#selfie-size").hidden`)
	b.expectText("#selfie-size", "This photo is 30 MB; the limit is 20 MiB.")
	if !run(b, chromedp.Evaluate[bool](`document.querySelector("#portal-submit").disabled && document.querySelector("#selfie-checks").hidden`)) {
		t.Error("the portal checks or sends a photo over the limit")
	}
	if msg := run(b, chromedp.Evaluate[string](`document.querySelector("#selfie").validationMessage`)); !strings.Contains(msg, "30 MB") {
		t.Errorf("the form can be sent with the photo over the limit (validation message %q)", msg)
	}
	b.shot("portal-too-large")
}
