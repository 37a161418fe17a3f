package access

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image/jpeg"
	"io"
	"io/fs"
	"math"
	"slices"
	"strconv"
	"time"

	"gabarit/internal/imageproc"
)

// KindVideo is the Face.SourceKind of faces found in videos: they are listed
// with their time code, and no frame is copied.
const KindVideo = "video"

// jpegQuality is the quality of the JPEGs written into the package.
const jpegQuality = 90

// Package is everything an access answer reports about one person.
type Package struct {
	RequestID int64
	Received  time.Time // when the request was received
	Due       time.Time // the Art. 12(3) deadline (dsr.Due)
	Generated time.Time // when the package is made; also the zip entries' times
	// Zone is the IANA zone the request's deadlines are counted in: every
	// date of the report is written in it ("" or unknown: UTC).
	Zone string
	// Controller, DPO and Authority name the controller, its data protection
	// officer and its lead supervisory authority; empty ones are reported as
	// "not declared".
	Controller, DPO, Authority string
	Faces                      []Face   // the person's faces; a repeated FaceID is listed once
	Searches                   []Search // every search that returned one of them
	// Limits bound image decoding; zero fields take imageproc.DefaultLimits.
	Limits imageproc.Limits
	// Reserve, when set, runs a decode of photo within the process's
	// memory budget (app.Reserve); nil decodes without one.
	Reserve func(photo []byte, decode func() error) error
	// UnreadableFaces counts the stored faces that could not be compared
	// with the person's photos (damaged records, in quarantine): the report
	// says so, since some of them may be the person's.
	UnreadableFaces int
}

// Face is one face of the person, as held in the store.
type Face struct {
	FaceID, ImageID, SourceID int64
	Locator                   string // where the image is at its source
	SourceKind                string // "folder", "archive", KindVideo, …
	// Controller, Purpose, LegalBasis and Art9 (the Art. 9(2) condition) are
	// those declared for the source; an empty Controller is the Package's.
	Controller, Purpose, LegalBasis, Art9 string
	Retention                             time.Duration  // how long the source keeps a face after collection
	Collected                             time.Time      // when the image was collected (zero: unknown)
	RetentionDeadline                     time.Time      // when the face is due for deletion (zero: unknown)
	TimeCode                              *time.Duration // position in a video, nil for still images
	// Box is the face as x, y, width, height in the pixels of the image
	// after its EXIF orientation is applied.
	Box        [4]float64
	Similarity float64 // how similar the face is to the person's reference
	// Others holds the boxes (same coordinates as Box) of every other face
	// of the image, to blur. Boxes of the person's own faces in the image
	// may appear here: they are recognised and not blurred.
	Others [][4]float64
	// Image returns the original image's bytes. When it is nil or fails, the
	// package says the image could not be read and why, and still lists the
	// face. It is not called for videos.
	Image func() ([]byte, error)
}

// Search is one search that returned the person.
type Search struct {
	ID        int64
	At        time.Time
	Actor     string   // the user or organisation that received the result
	Purpose   string   // the purpose declared for the search
	Case      string   // the case reference
	FaceIDs   []int64  // the person's faces it returned
	Confirmed []string // the verifiers who confirmed the match, if any
}

// Summary counts what Write put into the package.
type Summary struct {
	Faces      int // faces listed
	Images     int // images copied (with other people's faces blurred)
	Crops      int // crops of the person's faces written
	Unreadable int // images that could not be read or decoded
	VideoFaces int // faces found in videos, listed without a frame
	Searches   int // searches listed
	// Unread gives, for each unreadable image, the error met (for the
	// caller's logs: the package itself only says why in plain words).
	Unread []ImageError
}

// ImageError is an image that could not be read, and why.
type ImageError struct {
	ImageID int64
	Err     error // nil when the Face had no Image func
}

// Write writes the access package for p to w as a zip: report.json,
// report.html, images/<image_id>.jpg for every image held (each once, other
// people's faces blurred) and faces/<face_id>.jpg for every face whose image
// could be read. An image that cannot be read is reported in the package and
// counted in the Summary; it does not fail Write. Write stops with ctx's
// error when ctx is done, and with an error when w fails; in both cases
// what was written to w is not a usable package.
func Write(ctx context.Context, w io.Writer, p Package) (Summary, error) {
	var sum Summary
	if err := ctx.Err(); err != nil {
		return sum, fmt.Errorf("access package %d: %w", p.RequestID, err)
	}
	p = inZone(p)
	faces := uniqueFaces(p.Faces)
	r := newReport(p, faces)
	zw := zip.NewWriter(w)

	// Images first: what they give (included, unreadable, …) goes into the
	// reports, written last.
	groups, order := byImage(faces)
	for _, id := range order {
		if err := ctx.Err(); err != nil {
			return sum, fmt.Errorf("access package %d: %w", p.RequestID, err)
		}
		idx := groups[id]
		if faces[idx[0]].SourceKind == KindVideo {
			for _, i := range idx {
				r.Faces[i].ImageStatus = statusVideo
				r.Faces[i].Note = videoNote(faces[i].TimeCode)
				sum.VideoFaces++
			}
			continue
		}
		if err := writeImage(zw, p, faces, idx, r, &sum); err != nil {
			return sum, fmt.Errorf("access package %d: image %d: %w", p.RequestID, id, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return sum, fmt.Errorf("access package %d: %w", p.RequestID, err)
	}

	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return sum, fmt.Errorf("access package %d: encode report.json: %w", p.RequestID, err)
	}
	if err := writeEntry(zw, "report.json", p.Generated, zip.Deflate, append(js, '\n')); err != nil {
		return sum, fmt.Errorf("access package %d: %w", p.RequestID, err)
	}
	var page bytes.Buffer
	if err := reportPage.Execute(&page, r); err != nil {
		return sum, fmt.Errorf("access package %d: render report.html: %w", p.RequestID, err)
	}
	if err := writeEntry(zw, "report.html", p.Generated, zip.Deflate, page.Bytes()); err != nil {
		return sum, fmt.Errorf("access package %d: %w", p.RequestID, err)
	}
	if err := zw.Close(); err != nil {
		return sum, fmt.Errorf("access package %d: close zip: %w", p.RequestID, err)
	}
	sum.Faces = len(faces)
	sum.Searches = len(r.Searches)
	return sum, nil
}

// uniqueFaces drops repeated face IDs, keeping the first.
func uniqueFaces(in []Face) []Face {
	seen := make(map[int64]bool, len(in))
	out := make([]Face, 0, len(in))
	for _, f := range in {
		if seen[f.FaceID] {
			continue
		}
		seen[f.FaceID] = true
		out = append(out, f)
	}
	return out
}

// byImage groups face indexes by image, in order of first appearance.
func byImage(faces []Face) (map[int64][]int, []int64) {
	groups := map[int64][]int{}
	var order []int64
	for i, f := range faces {
		if _, ok := groups[f.ImageID]; !ok {
			order = append(order, f.ImageID)
		}
		groups[f.ImageID] = append(groups[f.ImageID], i)
	}
	return groups, order
}

// writeImage reads, blurs and writes one image and the crops of the
// person's faces in it, recording the outcome in r. Only a failure to write
// the zip is returned: an unreadable image is reported, not an error.
func writeImage(zw *zip.Writer, p Package, faces []Face, idx []int, r *report, sum *Summary) error {
	imageID := faces[idx[0]].ImageID
	var read func() ([]byte, error)
	for _, i := range idx {
		if faces[i].Image != nil {
			read = faces[i].Image
			break
		}
	}
	unreadable := func(err error) {
		sum.Unreadable++
		sum.Unread = append(sum.Unread, ImageError{ImageID: imageID, Err: err})
		for _, i := range idx {
			r.Faces[i].ImageStatus = statusUnreadable
			r.Faces[i].Note = "The image could not be read (" + unreadReason(read == nil, err) +
				"), so neither it nor the crop of your face is included; the face is listed with its source."
		}
	}
	if read == nil {
		unreadable(nil)
		return nil
	}
	data, err := read()
	if err != nil {
		unreadable(err)
		return nil
	}
	var dec *imageproc.Decoded
	decode := func() (err error) {
		dec, err = imageproc.Decode(data, imageproc.DecodeOptions{Limits: p.Limits})
		return err
	}
	if p.Reserve != nil {
		err = p.Reserve(data, decode)
	} else {
		err = decode()
	}
	if err != nil {
		unreadable(err)
		return nil
	}
	img := dec.Img

	// The person's own boxes are kept as they are; every other box is
	// obscured, unless it is one of the person's own.
	var own, others [][4]float64
	for _, i := range idx {
		own = append(own, faces[i].Box)
		others = append(others, faces[i].Others...)
	}
	blurred := ObscureOthers(img, own, others)

	name := "images/" + strconv.FormatInt(imageID, 10) + ".jpg"
	if err := writeJPEG(zw, name, p.Generated, img); err != nil {
		return err
	}
	sum.Images++
	for _, i := range idx {
		f := &r.Faces[i]
		f.ImageStatus = statusIncluded
		f.Image = name
		f.OthersBlurred = blurred > 0
		b := faces[i].Box
		m := cropMargin * math.Max(b[2], b[3])
		c := pixelRect(b, m, m, img.W, img.H)
		if c.empty() || pixelRect(b, 0, 0, img.W, img.H).empty() {
			f.Note = "The box of this face lies outside the image, so no crop of it is included."
			continue
		}
		crop := imageproc.Crop(img, c.x0, c.y0, c.x1-c.x0, c.y1-c.y0)
		cname := "faces/" + strconv.FormatInt(faces[i].FaceID, 10) + ".jpg"
		if err := writeJPEG(zw, cname, p.Generated, crop); err != nil {
			return err
		}
		f.Crop = cname
		sum.Crops++
	}
	return nil
}

// unreadReason says in plain words why an image could not be read. It never
// repeats the error's text, which may name things outside the person's data.
func unreadReason(noReader bool, err error) string {
	switch {
	case noReader:
		return "its content is not available to the system"
	case errors.Is(err, fs.ErrNotExist):
		return "it is no longer at its source"
	case errors.Is(err, fs.ErrPermission):
		return "its source refused access to it"
	case errors.Is(err, imageproc.ErrTooLarge):
		return "it is larger than the system decodes"
	case errors.Is(err, imageproc.ErrUnsupportedFormat):
		return "its format is not supported"
	case errors.Is(err, imageproc.ErrCorrupt):
		return "the file is damaged"
	default:
		return "its source could not be read"
	}
}

func videoNote(tc *time.Duration) string {
	at := ""
	if tc != nil {
		at = " at " + timeCode(*tc)
	}
	return "This face was found in a video" + at + "; video frames are not included in this package."
}

// timeCode formats a position in a video as h:mm:ss.mmm.
func timeCode(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	ms := d.Milliseconds()
	return fmt.Sprintf("%d:%02d:%02d.%03d", ms/3_600_000, ms/60_000%60, ms/1000%60, ms%1000)
}

func writeJPEG(zw *zip.Writer, name string, mod time.Time, img *imageproc.RGB) error {
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img.Image(), &jpeg.Options{Quality: jpegQuality}); err != nil {
		return fmt.Errorf("encode %s: %w", name, err)
	}
	// JPEG data does not compress further: store it.
	return writeEntry(zw, name, mod, zip.Store, b.Bytes())
}

func writeEntry(zw *zip.Writer, name string, mod time.Time, method uint16, data []byte) error {
	fw, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: method, Modified: mod})
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if _, err := fw.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

// inZone returns p with every date in p.Zone, so that the report speaks
// the person's local time, not the server's.
func inZone(p Package) Package {
	loc := time.UTC
	if p.Zone != "" {
		if l, err := time.LoadLocation(p.Zone); err == nil && p.Zone != "Local" {
			loc = l
		}
	}
	in := func(t time.Time) time.Time {
		if t.IsZero() {
			return t
		}
		return t.In(loc)
	}
	p.Received, p.Due, p.Generated = in(p.Received), in(p.Due), in(p.Generated)
	p.Faces = slices.Clone(p.Faces)
	for i := range p.Faces {
		p.Faces[i].Collected, p.Faces[i].RetentionDeadline = in(p.Faces[i].Collected), in(p.Faces[i].RetentionDeadline)
	}
	p.Searches = slices.Clone(p.Searches)
	for i := range p.Searches {
		p.Searches[i].At = in(p.Searches[i].At)
	}
	return p
}
