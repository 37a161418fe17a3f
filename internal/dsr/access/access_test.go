package access

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"io/fs"
	"slices"
	"strings"
	"testing"
	"time"

	"gabarit/internal/imageproc"
)

var t0 = time.Date(2026, 3, 15, 9, 30, 0, 0, time.UTC)

// scene draws a w×h picture: a smooth gradient, with a checkerboard of
// period 2·cell in each box (x, y, w, h). Checkerboards are the
// high-frequency content a blur must destroy.
func scene(w, h int, boxes [][4]float64, cell int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(60 + x*100/w), uint8(80 + y*100/h), 120, 255})
		}
	}
	for k, b := range boxes {
		for y := int(b[1]); y < int(b[1]+b[3]); y++ {
			for x := int(b[0]); x < int(b[0]+b[2]); x++ {
				v := uint8(30)
				if (x/cell+y/cell)%2 == 0 {
					v = 225
				}
				// Grey: JPEG keeps luma at full resolution, so only the
				// blur, not chroma subsampling, may remove this detail.
				g := uint8(int(v) + 8*k)
				img.Set(x, y, color.RGBA{g, g, g, 255})
			}
		}
	}
	return img
}

func pngBytes(t *testing.T, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func constBytes(b []byte) func() ([]byte, error) { return func() ([]byte, error) { return b, nil } }

// unzip writes p with Write and returns the entries by name.
func unzip(t *testing.T, p Package) (map[string][]byte, []string, Summary) {
	t.Helper()
	var buf bytes.Buffer
	sum, err := Write(context.Background(), &buf, p)
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatalf("read zip: %v", err)
	}
	files := map[string][]byte{}
	var names []string
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("read %s: %v", f.Name, err)
		}
		if _, dup := files[f.Name]; dup {
			t.Errorf("entry %s written twice", f.Name)
		}
		files[f.Name] = b
		names = append(names, f.Name)
	}
	return files, names, sum
}

func decode(t *testing.T, b []byte) *imageproc.RGB {
	t.Helper()
	d, err := imageproc.Decode(b, imageproc.DecodeOptions{})
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	return d.Img
}

func rgbOf(img image.Image) *imageproc.RGB {
	b := img.Bounds()
	m := imageproc.NewRGB(b.Dx(), b.Dy())
	for y := range m.H {
		for x := range m.W {
			r, g, bl, _ := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
			o := (y*m.W + x) * 3
			m.Pix[o], m.Pix[o+1], m.Pix[o+2] = uint8(r>>8), uint8(g>>8), uint8(bl>>8)
		}
	}
	return m
}

// meanAbsDiff is the mean absolute difference of a and b over the box.
func meanAbsDiff(a, b *imageproc.RGB, bx [4]float64) float64 {
	var sum, n float64
	for y := int(bx[1]); y < int(bx[1]+bx[3]); y++ {
		for x := int(bx[0]); x < int(bx[0]+bx[2]); x++ {
			for c := range 3 {
				d := float64(a.Pix[(y*a.W+x)*3+c]) - float64(b.Pix[(y*b.W+x)*3+c])
				if d < 0 {
					d = -d
				}
				sum += d
				n++
			}
		}
	}
	return sum / n
}

// detail is the mean absolute difference between horizontally and
// vertically neighbouring pixels inside the box: high on a checkerboard,
// near zero once it is blurred.
func detail(m *imageproc.RGB, bx [4]float64) float64 {
	var sum, n float64
	for y := int(bx[1]); y < int(bx[1]+bx[3])-1; y++ {
		for x := int(bx[0]); x < int(bx[0]+bx[2])-1; x++ {
			for c := range 3 {
				p := float64(m.Pix[(y*m.W+x)*3+c])
				dx := p - float64(m.Pix[(y*m.W+x+1)*3+c])
				dy := p - float64(m.Pix[((y+1)*m.W+x)*3+c])
				sum += max(dx, -dx) + max(dy, -dy)
				n += 2
			}
		}
	}
	return sum / n
}

func checkBlur(t *testing.T, name string, orig, got *imageproc.RGB, own, others [][4]float64) {
	t.Helper()
	if got.W != orig.W || got.H != orig.H {
		t.Fatalf("%s is %d×%d, want %d×%d", name, got.W, got.H, orig.W, orig.H)
	}
	for _, b := range own {
		// The face and a band of 4 pixels around it are untouched.
		for _, band := range [][4]float64{
			{b[0] - 4, b[1] - 4, b[2] + 8, 4}, {b[0] - 4, b[1] + b[3], b[2] + 8, 4},
			{b[0] - 4, b[1], 4, b[3]}, {b[0] + b[2], b[1], 4, b[3]},
		} {
			if d := meanAbsDiff(orig, got, band); d > 4 {
				t.Errorf("%s: around own face %v, %v changed by %.1f on average", name, b, band, d)
			}
		}
		if d := meanAbsDiff(orig, got, b); d > 6 {
			t.Errorf("%s: own face %v changed by %.1f on average, want it untouched (JPEG noise only)", name, b, d)
		}
		if d, o := detail(got, b), detail(orig, b); d < o*0.8 {
			t.Errorf("%s: own face %v lost its detail (%.1f, was %.1f)", name, b, d, o)
		}
	}
	for _, b := range others {
		if o, d := detail(orig, b), detail(got, b); !(o > 40 && d < 4) {
			t.Errorf("%s: other face %v keeps detail %.1f (was %.1f), want it destroyed", name, b, d, o)
		}
		if d := meanAbsDiff(orig, got, b); d < 40 {
			t.Errorf("%s: other face %v differs by only %.1f from the original", name, b, d)
		}
	}
}

func fixture(t *testing.T) (Package, *image.RGBA) {
	t.Helper()
	ownA := [4]float64{20, 20, 60, 60}
	ownB := [4]float64{100, 120, 48, 48}
	o1 := [4]float64{130, 20, 50, 56}
	o2 := [4]float64{20.5, 110.5, 40, 40}
	img := scene(200, 180, [][4]float64{ownA, ownB, o1, o2}, 2)
	data := pngBytes(t, img)
	tc := 83*time.Second + 400*time.Millisecond
	face := func(id int64, b [4]float64, others ...[4]float64) Face {
		return Face{
			FaceID: id, ImageID: 1, SourceID: 7, Locator: "/archive/2025/event.png", SourceKind: "folder",
			Controller: "Ville de Paris", Purpose: "missing persons", LegalBasis: "public-task",
			Art9: "9(2)(g) substantial public interest", Retention: 30 * 24 * time.Hour,
			Collected: t0.Add(-48 * time.Hour), RetentionDeadline: t0.Add(28 * 24 * time.Hour),
			Box: b, Similarity: 0.71, Others: others, Image: constBytes(data),
		}
	}
	p := Package{
		RequestID: 42, Received: t0, Due: t0.AddDate(0, 1, 0), Generated: t0.Add(time.Hour),
		Controller: "Ville de Paris", DPO: "dpo@example.org",
		Faces: []Face{
			// Each of the person's faces lists the other one among Others,
			// as a caller listing "every other face of the image" would.
			face(10, ownA, ownB, o1, o2),
			face(11, ownB, ownA, o1, o2),
			{FaceID: 20, ImageID: 2, SourceID: 8, Locator: "/gone.jpg", SourceKind: "folder",
				Image: func() ([]byte, error) { return nil, fs.ErrNotExist }},
			{FaceID: 30, ImageID: 3, SourceID: 9, Locator: "cctv/cam1.mp4", SourceKind: KindVideo, TimeCode: &tc,
				Image: func() ([]byte, error) { t.Error("Image called for a video"); return nil, nil }},
			face(10, ownA), // repeated: listed once
		},
		Searches: []Search{
			{ID: 5, At: t0.Add(-time.Hour), Actor: "OPJ Martin, BRP", Purpose: "missing persons", Case: "PV 2026/123",
				FaceIDs: []int64{10, 11}, Confirmed: []string{"v1", "v2"}},
			{ID: 4, At: t0.Add(-2 * time.Hour), Actor: "OPJ Martin, BRP", Purpose: "missing persons", Case: "PV 2026/120",
				FaceIDs: []int64{30}},
		},
	}
	return p, img
}

func TestWrite(t *testing.T) {
	t.Parallel()
	p, img := fixture(t)
	files, names, sum := unzip(t, p)

	want := []string{"faces/10.jpg", "faces/11.jpg", "images/1.jpg", "report.html", "report.json"}
	got := slices.Sorted(slices.Values(names))
	if !slices.Equal(got, want) {
		t.Errorf("entries = %v, want %v", got, want)
	}
	if sum.Faces != 4 || sum.Images != 1 || sum.Crops != 2 || sum.Unreadable != 1 || sum.VideoFaces != 1 || sum.Searches != 2 {
		t.Errorf("summary = %+v", sum)
	}
	if len(sum.Unread) != 1 || sum.Unread[0].ImageID != 2 || !errors.Is(sum.Unread[0].Err, fs.ErrNotExist) {
		t.Errorf("unread = %+v", sum.Unread)
	}

	orig := rgbOf(img)
	out := decode(t, files["images/1.jpg"])
	own := [][4]float64{p.Faces[0].Box, p.Faces[1].Box}
	checkBlur(t, "images/1.jpg", orig, out, own, p.Faces[0].Others[1:])

	// Each crop holds the face with a margin of a quarter of its side,
	// clipped to the image, and nothing in it is blurred: face 11, listed
	// among the Others of face 10, is the person's and is left alone.
	for _, c := range []struct {
		name       string
		x, y, w, h int
	}{
		{"faces/10.jpg", 5, 5, 90, 90},    // 60 + 2·15
		{"faces/11.jpg", 88, 108, 72, 72}, // 48 + 2·12
	} {
		crop := decode(t, files[c.name])
		if crop.W != c.w || crop.H != c.h {
			t.Errorf("%s is %d×%d, want %d×%d", c.name, crop.W, crop.H, c.w, c.h)
			continue
		}
		all := [4]float64{0, 0, float64(c.w), float64(c.h)}
		if d := meanAbsDiff(imageproc.Crop(orig, c.x, c.y, c.w, c.h), crop, all); d > 6 {
			t.Errorf("%s differs from the original by %.1f", c.name, d)
		}
	}
}

func TestReportJSON(t *testing.T) {
	t.Parallel()
	p, _ := fixture(t)
	files, _, _ := unzip(t, p)
	var r report
	if err := json.Unmarshal(files["report.json"], &r); err != nil {
		t.Fatalf("report.json: %v", err)
	}
	if r.RequestID != 42 || !r.Received.Equal(t0) || r.Authority != notDeclared || r.DPO != "dpo@example.org" {
		t.Errorf("header = %d %v %q %q", r.RequestID, r.Received, r.Authority, r.DPO)
	}
	if len(r.Faces) != 4 {
		t.Fatalf("faces = %d, want 4", len(r.Faces))
	}
	f := r.Faces[0]
	if f.FaceID != 10 || f.ImageStatus != statusIncluded || f.Image != "images/1.jpg" || f.Crop != "faces/10.jpg" ||
		!f.OthersBlurred || f.Purpose != "missing persons" || f.LegalBasis != "public-task" || f.Retention != "30 days" ||
		f.Collected == nil || !f.Collected.Equal(t0.Add(-48*time.Hour)) || f.SourceID != 7 || f.Locator != "/archive/2025/event.png" ||
		!slices.Equal(f.SearchIDs, []int64{5}) || f.Similarity == nil || *f.Similarity != 0.71 {
		t.Errorf("face 10 = %+v", f)
	}
	if u := r.Faces[2]; u.ImageStatus != statusUnreadable || u.Image != "" || u.Crop != "" || !strings.Contains(u.Note, "no longer at its source") ||
		u.Controller != "Ville de Paris" || u.Purpose != notDeclared {
		t.Errorf("unreadable face = %+v", u)
	}
	if v := r.Faces[3]; v.ImageStatus != statusVideo || v.TimeCode != "0:01:23.400" || v.TimeCodeMS == nil || *v.TimeCodeMS != 83400 ||
		!strings.Contains(v.Note, "0:01:23.400") || !slices.Equal(v.SearchIDs, []int64{4}) {
		t.Errorf("video face = %+v", v)
	}
	if len(r.Searches) != 2 || r.Searches[0].SearchID != 4 || r.Searches[1].Case != "PV 2026/123" ||
		r.Searches[1].ReceivedBy != "OPJ Martin, BRP" || !r.Searches[1].TwoVerifiers || r.Searches[0].TwoVerifiers ||
		r.Searches[0].ConfirmedBy == nil {
		t.Errorf("searches = %+v", r.Searches)
	}
	a := r.Art15
	if len(a.Recipients) != 1 || a.Recipients[0].Searches != 2 || len(a.Rights) != 4 || len(a.Sources) != 3 ||
		!strings.Contains(a.AutomatedDecisions, "candidate") || !strings.Contains(a.Complaint, notDeclared) ||
		len(a.Categories) == 0 || len(a.Purposes) == 0 || len(a.Retention) == 0 {
		t.Errorf("art15 = %+v", a)
	}

	// Round trip: encoding the decoded report gives the same JSON.
	again, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(append(again, '\n'), files["report.json"]) {
		t.Errorf("report.json does not round-trip")
	}

	// No key may carry a template or embedding, nor other faces' boxes.
	var generic any
	if err := json.Unmarshal(files["report.json"], &generic); err != nil {
		t.Fatal(err)
	}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				for _, bad := range []string{"template", "embedding", "vector", "others"} {
					if strings.Contains(strings.ToLower(k), bad) {
						t.Errorf("report.json has key %q", k)
					}
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(generic)
}

func TestReportHTML(t *testing.T) {
	t.Parallel()
	p, _ := fixture(t)
	hostile := "<script>alert(1)</script>.jpg"
	p.Faces[0].Locator = hostile
	p.Searches[0].Case = `"><img src=x onerror=alert(2)>`
	files, _, _ := unzip(t, p)
	page := string(files["report.html"])
	if strings.Contains(page, "<script>") || strings.Contains(page, "<img src=x") {
		t.Errorf("report.html holds unescaped input")
	}
	if !strings.Contains(page, "&lt;script&gt;alert(1)&lt;/script&gt;.jpg") {
		t.Errorf("report.html does not show the escaped locator")
	}
	for _, want := range []string{
		`src="faces/10.jpg"`, `href="images/1.jpg"`, "PV 2026/120", "OPJ Martin, BRP",
		"(a) Purposes", "(b) Categories", "(c) Recipients", "(d) Retention", "Rectification", "Erasure",
		"Restriction", "Objection", "(f) Complaint", "supervisory authority", "(g) Source", "(h) Automated",
		"must review and confirm", "not declared", "0:01:23.400", "video frames are not included",
		"no longer at its source", "not included in this package",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	if strings.Contains(page, "http://") || strings.Contains(page, "https://") {
		t.Errorf("report.html refers to something outside the package")
	}
}

// exifJPEG returns img as a JPEG whose EXIF orientation is o.
func exifJPEG(t *testing.T, img image.Image, o uint16) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 98}); err != nil {
		t.Fatal(err)
	}
	tiff := []byte("II*\x00\x08\x00\x00\x00\x01\x00")
	tiff = binary.LittleEndian.AppendUint16(tiff, 0x0112)
	tiff = binary.LittleEndian.AppendUint16(tiff, 3)
	tiff = binary.LittleEndian.AppendUint32(tiff, 1)
	tiff = binary.LittleEndian.AppendUint16(tiff, o)
	tiff = append(tiff, 0, 0, 0, 0, 0, 0)
	seg := append([]byte("Exif\x00\x00"), tiff...)
	app1 := []byte{0xFF, 0xE1, byte((len(seg) + 2) >> 8), byte(len(seg) + 2)}
	app1 = append(app1, seg...)
	raw := b.Bytes()
	return append(append(append([]byte{}, raw[:2]...), app1...), raw[2:]...)
}

// TestWriteOrientation checks that boxes are taken in the pixels of the
// image after its EXIF orientation is applied, as imageproc returns them.
func TestWriteOrientation(t *testing.T) {
	t.Parallel()
	own := [4]float64{16, 24, 64, 64}
	other := [4]float64{96, 120, 56, 56}
	oriented := scene(160, 200, [][4]float64{own, other}, 4) // what the viewer sees
	// Orientation 6: the stored pixels must be turned 90° clockwise to be
	// seen upright, so store them turned 90° anticlockwise.
	stored := image.NewRGBA(image.Rect(0, 0, 200, 160))
	for y := range 200 {
		for x := range 160 {
			stored.Set(y, 159-x, oriented.At(x, y))
		}
	}
	data := exifJPEG(t, stored, 6)
	if d, err := imageproc.Decode(data, imageproc.DecodeOptions{}); err != nil || d.Orientation != 6 || d.Img.W != 160 {
		t.Fatalf("test image: %+v, %v", d, err)
	}
	p := Package{RequestID: 1, Generated: t0, Faces: []Face{{
		FaceID: 1, ImageID: 9, SourceKind: "archive", Box: own, Others: [][4]float64{other}, Image: constBytes(data),
	}}}
	files, _, sum := unzip(t, p)
	if sum.Images != 1 {
		t.Fatalf("summary = %+v", sum)
	}
	checkBlur(t, "images/9.jpg", rgbOf(oriented), decode(t, files["images/9.jpg"]), [][4]float64{own}, [][4]float64{other})
}

func TestWriteUnreadable(t *testing.T) {
	t.Parallel()
	good := pngBytes(t, scene(64, 64, nil, 2))
	for _, tc := range []struct {
		name   string
		read   func() ([]byte, error)
		limits imageproc.Limits
		why    string
	}{
		{"no reader", nil, imageproc.Limits{}, "not available"},
		{"missing", func() ([]byte, error) { return nil, fs.ErrNotExist }, imageproc.Limits{}, "no longer at its source"},
		{"refused", func() ([]byte, error) { return nil, fs.ErrPermission }, imageproc.Limits{}, "refused"},
		{"other error", func() ([]byte, error) { return nil, errors.New("disk /secret/bob on fire") }, imageproc.Limits{}, "could not be read"},
		{"corrupt", constBytes(good[:40]), imageproc.Limits{}, "damaged"},
		{"not an image", constBytes([]byte("hello, world")), imageproc.Limits{}, "not supported"},
		{"too large", constBytes(good), imageproc.Limits{MaxPixels: 100}, "larger"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := Package{RequestID: 3, Generated: t0, Limits: tc.limits, Faces: []Face{
				{FaceID: 1, ImageID: 5, SourceKind: "folder", Locator: "a.png", Box: [4]float64{1, 1, 10, 10}, Image: tc.read},
			}}
			files, names, sum := unzip(t, p)
			if sum.Unreadable != 1 || sum.Images != 0 || sum.Faces != 1 || len(sum.Unread) != 1 || sum.Unread[0].ImageID != 5 {
				t.Errorf("summary = %+v", sum)
			}
			if len(names) != 2 {
				t.Errorf("entries = %v, want the two reports only", names)
			}
			var r report
			if err := json.Unmarshal(files["report.json"], &r); err != nil {
				t.Fatal(err)
			}
			if f := r.Faces[0]; f.ImageStatus != statusUnreadable || !strings.Contains(f.Note, tc.why) || f.Locator != "a.png" {
				t.Errorf("face = %+v, want unreadable because %q", f, tc.why)
			}
			if strings.Contains(string(files["report.json"])+string(files["report.html"]), "secret") {
				t.Errorf("the package repeats the error's text")
			}
		})
	}
}

func TestWriteEmpty(t *testing.T) {
	t.Parallel()
	files, names, sum := unzip(t, Package{RequestID: 9, Generated: t0})
	if len(names) != 2 || sum.Faces+sum.Images+sum.Crops+sum.Unreadable+sum.VideoFaces+sum.Searches != 0 || sum.Unread != nil {
		t.Errorf("entries %v, summary %+v", names, sum)
	}
	var r report
	if err := json.Unmarshal(files["report.json"], &r); err != nil {
		t.Fatal(err)
	}
	if r.Faces == nil || r.Searches == nil || r.Art15.Recipients == nil || !strings.Contains(r.Confirmation, "no face") {
		t.Errorf("report = %+v", r)
	}
}

func TestWriteCancel(t *testing.T) {
	t.Parallel()
	p, _ := fixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Write(ctx, io.Discard, p); !errors.Is(err, context.Canceled) {
		t.Errorf("Write with a cancelled context = %v", err)
	}

	// Cancelled while reading the first image: the next step stops.
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	read := p.Faces[0].Image
	calls := 0
	for i := range p.Faces {
		if p.Faces[i].ImageID == 1 {
			p.Faces[i].Image = func() ([]byte, error) { calls++; cancel(); return read() }
		}
	}
	p.Faces = append(p.Faces, Face{FaceID: 99, ImageID: 99, Image: func() ([]byte, error) {
		t.Error("image read after cancellation")
		return nil, nil
	}})
	if _, err := Write(ctx, io.Discard, p); !errors.Is(err, context.Canceled) {
		t.Errorf("Write cancelled midway = %v", err)
	}
	if calls != 1 {
		t.Errorf("image 1 read %d times, want once", calls)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteFailingWriter(t *testing.T) {
	t.Parallel()
	p, _ := fixture(t)
	if _, err := Write(context.Background(), failWriter{}, p); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("Write to a failing writer = %v", err)
	}
}
