package pipeline

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"gabarit/internal/face"
	"gabarit/internal/imageproc"
	"gabarit/internal/membudget"
)

// Detector finds faces in one image.
type Detector interface {
	// InputSize returns the fixed network input size, or 0, 0 when any size is accepted.
	InputSize() (w, h int)
	// HasLandmarks reports whether detections carry five landmarks.
	HasLandmarks() bool
	// Detect returns raw detections (before NMS) in img's pixel coordinates.
	// img has the input size when it is fixed. Safe for concurrent use.
	Detect(ctx context.Context, img *imageproc.RGB) ([]face.Detection, error)
}

// Landmarker locates 68 points on square face crops.
type Landmarker interface {
	// InputSize returns the side of the square crop.
	InputSize() int
	// Landmarks68 returns the points of each crop as fractions of its side.
	Landmarks68(ctx context.Context, crops []*imageproc.RGB) ([][68]face.Point, error)
	// FivePoints reduces 68 points to the five ArcFace landmarks.
	FivePoints(p [68]face.Point) face.Landmarks
}

// Embedder turns aligned crops into templates.
type Embedder interface {
	// Dim returns the template length.
	Dim() int
	// InputSize returns the aligned crop size.
	InputSize() (w, h int)
	// Embed returns one L2-normalised template per crop. Safe for concurrent use.
	Embed(ctx context.Context, crops []*imageproc.RGB) ([]face.Embedding, error)
}

// Config tunes the pipeline. The zero value of a field means its default.
type Config struct {
	// MinFace is the smallest face side, in original-image pixels, that the
	// detector pyramid is built to find (default 40).
	MinFace float64
	// MinFaceFraction raises MinFace to this fraction of the image's shorter
	// side (default 0.02: 60 px in a 4000×3000 photo; <0 disables). Each
	// halving of the smallest face quadruples the detector's work.
	MinFaceFraction float64
	// DetectorMinFace is the smallest face side, in detector-input pixels,
	// that the detector finds reliably (default 20: RFB-320 found 13 of 15
	// pasted faces at 20 px, 10 at 16 px, all at 24 px). With MinFace it sets
	// the finest pyramid level.
	DetectorMinFace float64
	// TileOverlap is the overlap of neighbouring detector tiles in input
	// pixels (default 64): faces up to this size are whole in some tile;
	// bigger ones are left to the next, coarser level.
	TileOverlap int
	// MaxDetectSide caps the longer side of the image given to a detector
	// that accepts any size (default 1280).
	MaxDetectSide int
	// DecodeSide lets JPEG decoding downscale in the DCT domain as long as
	// the longer side stays at least this long (default 1600; <0 disables).
	DecodeSide int
	// Limits bound the files accepted (default imageproc.DefaultLimits).
	Limits imageproc.Limits
	// NMSIoU is the IoU above which the weaker of two detections is dropped
	// (default: the pack's threshold, else 0.4).
	NMSIoU float64
	// SkipEmbedding leaves Face.Embedding nil (detection and landmarks only).
	SkipEmbedding bool
	// EmbedBatch, when above 1, merges the embedder calls of the images
	// processed at once into batches of up to this many faces (see
	// Batcher): what keeps a GPU busy. 0 or 1: one call per image.
	EmbedBatch int
	// Budget, when set, is the process's memory budget: ProcessBytes and
	// ProcessFile reserve in it what decoding the image takes (estimated
	// from its header, see imageproc.Estimate) and what the analysis adds,
	// before decoding, and give it back when the analysis is done. An
	// image waits while others hold the budget (see membudget.WithMaxWait),
	// and one that needs more than the whole budget is refused at once
	// with an *imageproc.MemoryLimitError.
	Budget *membudget.Budget
}

// analysisBytes is what the analysis of a decoded image adds to its
// decoding: the detector's scaled copies and tiles (the longer side at most
// MaxDetectSide), the tensors and the aligned crops.
const analysisBytes = 32 << 20

func (c Config) withDefaults() Config {
	if c.MinFace <= 0 {
		c.MinFace = 40
	}
	if c.MinFaceFraction == 0 {
		c.MinFaceFraction = 0.02
	}
	if c.DetectorMinFace <= 0 {
		c.DetectorMinFace = 20
	}
	if c.TileOverlap <= 0 {
		c.TileOverlap = 64
	}
	if c.MaxDetectSide <= 0 {
		c.MaxDetectSide = 1280
	}
	if c.DecodeSide == 0 {
		c.DecodeSide = 1600
	}
	if c.Limits == (imageproc.Limits{}) {
		c.Limits = imageproc.DefaultLimits
	}
	if c.NMSIoU <= 0 {
		c.NMSIoU = 0.4
	}
	return c
}

// Pipeline runs the face path. Its methods are safe for concurrent use.
type Pipeline struct {
	det Detector
	lm  Landmarker // nil when det gives landmarks
	emb Embedder
	cfg Config
	st  stageClock
}

// Stage names, in the order an image goes through them.
const (
	StageDecode    = "decode"
	StageDetect    = "detect"
	StageLandmarks = "landmarks"
	StageAlign     = "align"
	StageEmbed     = "embed"
)

// Stages lists the stage names in order.
var Stages = []string{StageDecode, StageDetect, StageLandmarks, StageAlign, StageEmbed}

// stageClock sums the time spent in each stage, over all images.
type stageClock [5]atomic.Int64

func (c *stageClock) add(stage int, since time.Time) { c[stage].Add(int64(time.Since(since))) }

// StageTimes returns the time spent so far in each stage (see Stages),
// summed over the images processed, concurrent ones each counted: with
// several workers the sum exceeds the wall time. The embed stage includes
// the wait for a batch to fill.
func (p *Pipeline) StageTimes() map[string]time.Duration {
	out := make(map[string]time.Duration, len(Stages))
	for i, s := range Stages {
		out[s] = time.Duration(p.st[i].Load())
	}
	return out
}

// ResetStageTimes sets the stage times back to zero.
func (p *Pipeline) ResetStageTimes() {
	for i := range p.st {
		p.st[i].Store(0)
	}
}

// New builds a pipeline. lm may be nil only when det gives landmarks; emb
// may be nil only when cfg.SkipEmbedding is set.
func New(det Detector, lm Landmarker, emb Embedder, cfg Config) (*Pipeline, error) {
	if det == nil {
		return nil, errors.New("pipeline: no detector")
	}
	if lm == nil && !det.HasLandmarks() {
		return nil, errors.New("pipeline: the detector gives no landmarks and no landmark model is set")
	}
	if emb == nil && !cfg.SkipEmbedding {
		return nil, errors.New("pipeline: no embedder")
	}
	if emb != nil && cfg.EmbedBatch > 1 {
		emb = NewBatcher(emb, cfg.EmbedBatch, 0)
	}
	return &Pipeline{det: det, lm: lm, emb: emb, cfg: cfg.withDefaults()}, nil
}

// Result is what the pipeline found in one image.
type Result struct {
	Width, Height int         // original size after EXIF orientation
	Format        string      // decoded format
	Faces         []face.Face // in original-image pixels, by descending detector score
}

// ProcessFile decodes the file at path and processes it.
// Budget is the process's memory budget the pipeline reserves in (nil when
// there is none), for whoever decodes a photo again after its analysis.
func (p *Pipeline) Budget() *membudget.Budget { return p.cfg.Budget }

func (p *Pipeline) ProcessFile(ctx context.Context, path string) (*Result, error) {
	data, err := imageproc.ReadFile(path, p.cfg.Limits.MaxBytes)
	if err != nil {
		return nil, err
	}
	release, err := p.reserve(ctx, data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	defer release()
	t0 := time.Now()
	d, err := imageproc.Decode(data, p.decodeOptions())
	p.st.add(0, t0)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p.Process(ctx, d)
}

// ProcessBytes decodes an encoded image and processes it.
func (p *Pipeline) ProcessBytes(ctx context.Context, data []byte) (*Result, error) {
	release, err := p.reserve(ctx, data)
	if err != nil {
		return nil, err
	}
	defer release()
	t0 := time.Now()
	d, err := imageproc.Decode(data, p.decodeOptions())
	p.st.add(0, t0)
	if err != nil {
		return nil, err
	}
	return p.Process(ctx, d)
}

// reserve estimates, from its header, the memory that decoding and
// analysing data takes and reserves it in the budget; the image's own
// limits are checked on the way (the errors are Decode's). Without a
// budget it reserves nothing.
func (p *Pipeline) reserve(ctx context.Context, data []byte) (release func(), err error) {
	if p.cfg.Budget == nil {
		return func() {}, nil
	}
	// An image that the whole budget cannot hold is refused as over the
	// decoder's limit (*imageproc.MemoryLimitError), with its size.
	opt := p.decodeOptions()
	limit := opt.Limits.MaxDecodedBytes
	if limit <= 0 {
		limit = imageproc.DefaultLimits.MaxDecodedBytes
	}
	opt.Limits.MaxDecodedBytes = max(min(limit, p.cfg.Budget.Size()-analysisBytes), 1)
	need, err := imageproc.Estimate(data, opt)
	if err != nil {
		return nil, err
	}
	return p.cfg.Budget.Acquire(ctx, need+analysisBytes)
}

func (p *Pipeline) decodeOptions() imageproc.DecodeOptions {
	return imageproc.DecodeOptions{Limits: p.cfg.Limits, TargetSide: max(p.cfg.DecodeSide, 0)}
}

// Process finds, aligns and embeds the faces of a decoded image.
func (p *Pipeline) Process(ctx context.Context, d *imageproc.Decoded) (*Result, error) {
	img := d.Img
	if err := img.Validate(); err != nil {
		return nil, err
	}
	// s maps decoded-image pixels to original pixels.
	s := float64(d.Width) / float64(img.W)
	minFace := math.Max(p.cfg.MinFace, p.cfg.MinFaceFraction*float64(min(d.Width, d.Height)))
	t0 := time.Now()
	dets, err := p.detect(ctx, img, minFace/s)
	p.st.add(1, t0)
	if err != nil {
		return nil, err
	}
	t0 = time.Now()
	faces, err := p.landmarks(ctx, img, dets)
	p.st.add(2, t0)
	if err != nil {
		return nil, err
	}
	t0 = time.Now()
	crops, err := p.align(img, faces)
	p.st.add(3, t0)
	if err != nil {
		return nil, err
	}
	if !p.cfg.SkipEmbedding && len(faces) > 0 {
		t0 = time.Now()
		err := p.embed(ctx, crops, faces)
		p.st.add(4, t0)
		if err != nil {
			return nil, err
		}
	}
	for i := range faces {
		scaleFace(&faces[i], s)
	}
	return &Result{Width: d.Width, Height: d.Height, Format: d.Format, Faces: faces}, nil
}

func scaleFace(f *face.Face, s float64) {
	f.Box = face.Box{X: f.Box.X * s, Y: f.Box.Y * s, W: f.Box.W * s, H: f.Box.H * s}
	for k := range f.Landmarks {
		f.Landmarks[k].X *= s
		f.Landmarks[k].Y *= s
	}
}

// landmarks gives each detection its five points (from the detector or from
// the 68-point model on a square crop of side the box height).
func (p *Pipeline) landmarks(ctx context.Context, img *imageproc.RGB, dets []face.Detection) ([]face.Face, error) {
	faces := make([]face.Face, len(dets))
	for i, d := range dets {
		faces[i] = face.Face{Box: d.Box, Score: d.Score}
		if d.Points != nil {
			faces[i].Landmarks = *d.Points
		}
	}
	if p.lm == nil || len(dets) == 0 {
		return faces, nil
	}
	side := p.lm.InputSize()
	crops := make([]*imageproc.RGB, len(dets))
	corners := make([][3]float64, len(dets))
	for i, d := range dets {
		b := d.Box
		sq := b.H
		x0 := b.X + b.W/2 - sq/2
		y0 := b.Y
		k := float64(side) / sq
		c, err := imageproc.Warp(img, imageproc.Affine{k, 0, -x0 * k, 0, k, -y0 * k}, side, side)
		if err != nil {
			return nil, fmt.Errorf("landmark crop: %w", err)
		}
		crops[i] = c
		corners[i] = [3]float64{x0, y0, sq}
	}
	pts, err := p.lm.Landmarks68(ctx, crops)
	if err != nil {
		return nil, err
	}
	for i := range faces {
		x0, y0, sq := corners[i][0], corners[i][1], corners[i][2]
		var abs [68]face.Point
		for k, q := range pts[i] {
			abs[k] = face.Point{X: x0 + q.X*sq, Y: y0 + q.Y*sq}
		}
		faces[i].Landmarks = p.lm.FivePoints(abs)
	}
	return faces, nil
}

// ArcFaceTemplate is where the five landmarks of a 112×112 aligned face go
// (InsightFace's reference points).
var ArcFaceTemplate = [5][2]float64{
	{38.2946, 51.6963},
	{73.5318, 51.5014},
	{56.0252, 71.7366},
	{41.5493, 92.3655},
	{70.7299, 92.2041},
}

// Align warps the face with landmarks lm onto the ArcFace template, at w×h
// (the template is scaled when w, h differ from 112).
func Align(img *imageproc.RGB, lm face.Landmarks, w, h int) (*imageproc.RGB, imageproc.Affine, error) {
	src := make([][2]float64, 5)
	dst := make([][2]float64, 5)
	for k := range 5 {
		src[k] = [2]float64{lm[k].X, lm[k].Y}
		dst[k] = [2]float64{ArcFaceTemplate[k][0] * float64(w) / 112, ArcFaceTemplate[k][1] * float64(h) / 112}
	}
	m, err := imageproc.Similarity(src, dst)
	if err != nil {
		return nil, m, fmt.Errorf("align: %w", err)
	}
	crop, err := imageproc.Warp(img, m, w, h)
	return crop, m, err
}

// align warps every face onto the template at the embedder's input size
// (112×112 without an embedder) and scores its quality on the aligned crop.
func (p *Pipeline) align(img *imageproc.RGB, faces []face.Face) ([]*imageproc.RGB, error) {
	w, h := 112, 112
	if p.emb != nil {
		w, h = p.emb.InputSize()
	}
	crops := make([]*imageproc.RGB, len(faces))
	for i := range faces {
		c, _, err := Align(img, faces[i].Landmarks, w, h)
		if err != nil {
			// Degenerate landmarks: keep the face, embed its box, and mark
			// it useless for recognition.
			b := faces[i].Box
			k := float64(w) / math.Max(b.W, 1)
			c, err = imageproc.Warp(img, imageproc.Affine{k, 0, -b.X * k, 0, float64(h) / math.Max(b.H, 1), -b.Y * float64(h) / math.Max(b.H, 1)}, w, h)
			if err != nil {
				return nil, err
			}
			crops[i] = c
			faces[i].Quality = 0
			continue
		}
		crops[i] = c
		faces[i].Quality = quality(&faces[i], c)
	}
	return crops, nil
}

// embed computes the templates of the aligned crops, one batch per image.
func (p *Pipeline) embed(ctx context.Context, crops []*imageproc.RGB, faces []face.Face) error {
	embs, err := p.emb.Embed(ctx, crops)
	if err != nil {
		return err
	}
	if len(embs) != len(faces) {
		return fmt.Errorf("embedder returned %d templates for %d faces", len(embs), len(faces))
	}
	for i := range faces {
		faces[i].Embedding = embs[i]
	}
	return nil
}

// EmbedAligned embeds already aligned crops (for benchmarks and evaluation).
func (p *Pipeline) EmbedAligned(ctx context.Context, crops []*imageproc.RGB) ([]face.Embedding, error) {
	if p.emb == nil {
		return nil, errors.New("pipeline: no embedder")
	}
	return p.emb.Embed(ctx, crops)
}

// Quality scores a face's usefulness for recognition in [0,1] as the product
// of three factors, each in [0,1]:
//   - size: the distance between the eyes in the pixels available
//     (decoded image), 0 at ≤ 8 px, 1 at ≥ 32 px (the aligned template has 35);
//   - sharpness: the variance of the Laplacian of the aligned grey crop on a
//     log scale, 0 at ≤ 15, 1 at ≥ 400;
//   - pose: how far the nose sits from the eyes' midline, relative to the
//     distance between the eyes (a yaw proxy), 1 when centred, 0 at ≥ 0.45.
func quality(f *face.Face, aligned *imageproc.RGB) float64 {
	le, re, nose := f.Landmarks[0], f.Landmarks[1], f.Landmarks[2]
	iod := math.Hypot(re.X-le.X, re.Y-le.Y)
	size := ramp(iod, 8, 32)
	pose := 0.0
	if iod > 0 {
		// Nose offset from the eyes' midpoint, along the eye line.
		ux, uy := (re.X-le.X)/iod, (re.Y-le.Y)/iod
		mx, my := (le.X+re.X)/2, (le.Y+re.Y)/2
		yaw := math.Abs((nose.X-mx)*ux+(nose.Y-my)*uy) / iod
		pose = 1 - ramp(yaw, 0, 0.45)
	}
	sharp := ramp(math.Log(laplacianVariance(aligned)), math.Log(15), math.Log(400))
	return size * sharp * pose
}

func ramp(v, lo, hi float64) float64 {
	return math.Min(math.Max((v-lo)/(hi-lo), 0), 1)
}

// laplacianVariance is the variance of the 4-neighbour Laplacian of the grey
// image, over its central part (the border of an aligned crop is background).
func laplacianVariance(m *imageproc.RGB) float64 {
	g := imageproc.Gray(m)
	w, h := m.W, m.H
	var sum, sq float64
	n := 0
	for y := h / 8; y < h-h/8; y++ {
		for x := w / 8; x < w-w/8; x++ {
			if x == 0 || y == 0 || x == w-1 || y == h-1 {
				continue
			}
			l := float64(g[(y-1)*w+x] + g[(y+1)*w+x] + g[y*w+x-1] + g[y*w+x+1] - 4*g[y*w+x])
			sum += l
			sq += l * l
			n++
		}
	}
	if n == 0 {
		return 0
	}
	mean := sum / float64(n)
	return math.Max(sq/float64(n)-mean*mean, 1e-9)
}
