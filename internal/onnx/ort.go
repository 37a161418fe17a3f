//go:build cgo && onnx

package onnx

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"

	ort "github.com/yalue/onnxruntime_go"

	"gabarit/internal/face"
	"gabarit/internal/imageproc"
	"gabarit/internal/modelpack"
)

// Available reports whether this build can run ONNX models.
const Available = true

// The ONNX Runtime environment is process-global: the first Open creates it,
// the last Close destroys it.
var env struct {
	sync.Mutex
	refs    int
	library string
	cuda    string
}

func acquire(o Options) error {
	env.Lock()
	defer env.Unlock()
	if env.refs > 0 {
		if env.library != o.Library {
			return fmt.Errorf("onnx: runtime %s already loaded, cannot load %s", env.library, o.Library)
		}
		env.refs++
		return nil
	}
	if _, err := os.Stat(o.Library); err != nil {
		return fmt.Errorf("onnx: runtime library: %w (run gabarit setup)", err)
	}
	ort.SetSharedLibraryPath(o.Library)
	if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
		return fmt.Errorf("onnx: initialise runtime %s: %w", o.Library, err)
	}
	env.library = o.Library
	env.cuda = ""
	env.refs = 1
	return nil
}

func release() error {
	env.Lock()
	defer env.Unlock()
	env.refs--
	if env.refs > 0 {
		return nil
	}
	return ort.DestroyEnvironment()
}

func registerCUDA(path string) error {
	env.Lock()
	defer env.Unlock()
	if env.cuda == path {
		return nil
	}
	if err := ort.RegisterExecutionProviderLibrary("cuda", path); err != nil {
		return fmt.Errorf("onnx: register CUDA provider %s: %w", path, err)
	}
	env.cuda = path
	return nil
}

// Models are the opened networks of one model pack.
type Models struct {
	Manifest   *modelpack.Manifest // the pack's verified manifest
	Detector   *Detector
	Landmarker *Landmarker // nil when the detector gives landmarks
	Embedder   *Embedder
	sessions   []*session
}

// Open verifies the pack in dir and loads its networks.
func Open(ctx context.Context, dir string, o Options) (*Models, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	m, err := modelpack.Open(dir)
	if err != nil {
		return nil, err
	}
	if o.Device == "cuda" {
		for _, p := range []string{o.Library, o.CUDAProvider} {
			if _, err := os.Stat(p); err != nil {
				return nil, fmt.Errorf("onnx: device cuda: the CUDA build of ONNX Runtime is not installed (%s is missing); install it with gabarit setup --gpu, or use --device cpu", p)
			}
		}
	}
	if err := acquire(o); err != nil {
		return nil, err
	}
	ms := &Models{Manifest: m}
	fail := func(err error) (*Models, error) {
		_ = ms.Close() // the original error matters more than a failed cleanup
		return nil, err
	}
	if o.Device == "cuda" {
		if err := registerCUDA(o.CUDAProvider); err != nil {
			_ = release() // the registration error is the one to report
			return nil, fmt.Errorf("%w; it needs an NVIDIA GPU with its driver, and the CUDA 13 and cuDNN 9 libraries on LD_LIBRARY_PATH (see the README, GPU); without them use --device cpu", err)
		}
		n, err := gpuDevices("")
		if err == nil && n == 0 {
			err = errors.New("onnx: device cuda: the CUDA provider loaded but found no GPU (see nvidia-smi); use --device cpu")
		}
		if err != nil {
			_ = release() // the device error is the one to report
			return nil, err
		}
	}
	open := func(md *modelpack.Model, outputs []string) (*session, error) {
		s, err := newSession(modelpack.Path(dir, md.File), md, outputs, o)
		if err != nil {
			return nil, err
		}
		ms.sessions = append(ms.sessions, s)
		return s, nil
	}
	var detOut []string
	switch m.Detector.Kind {
	case "rfb320":
		detOut = []string{"scores", "boxes"}
	case "yunet":
		for _, k := range []string{"cls", "obj", "bbox", "kps"} {
			for _, st := range []string{"8", "16", "32"} {
				detOut = append(detOut, k+"_"+st)
			}
		}
	}
	ds, err := open(&m.Detector, detOut)
	if err != nil {
		return fail(err)
	}
	ms.Detector = &Detector{s: ds, kind: m.Detector.Kind, minScore: m.Thresholds.Detection}
	if m.Landmarks != nil {
		ls, err := open(m.Landmarks, nil)
		if err != nil {
			return fail(err)
		}
		ms.Landmarker = &Landmarker{s: ls}
	}
	es, err := open(&m.Embedder, nil)
	if err != nil {
		return fail(err)
	}
	ms.Embedder = &Embedder{s: es, dim: m.Embedder.Dim, batch: m.Embedder.DynamicBatch}
	return ms, ctx.Err()
}

// Close releases the sessions and, with the last user, the runtime.
func (m *Models) Close() error {
	var errs []error
	for _, s := range m.sessions {
		errs = append(errs, s.sess.Destroy())
	}
	m.sessions = nil
	errs = append(errs, release())
	return errors.Join(errs...)
}

// session is one ONNX network with its input preparation.
type session struct {
	sess    *ort.DynamicAdvancedSession
	model   modelpack.Model
	outputs []string
}

func newSession(path string, md *modelpack.Model, outputs []string, o Options) (*session, error) {
	ins, outs, err := ort.GetInputOutputInfo(path)
	if err != nil {
		return nil, fmt.Errorf("onnx: read %s: %w", path, err)
	}
	if len(ins) != 1 {
		return nil, fmt.Errorf("onnx: %s has %d inputs, want 1", path, len(ins))
	}
	if outputs == nil {
		outputs = []string{outs[0].Name}
	}
	opts, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("onnx: session options: %w", err)
	}
	defer opts.Destroy()
	threads := max(o.Threads, 1)
	if err := opts.SetIntraOpNumThreads(threads); err != nil {
		return nil, fmt.Errorf("onnx: set threads: %w", err)
	}
	if err := opts.SetInterOpNumThreads(1); err != nil {
		return nil, fmt.Errorf("onnx: set threads: %w", err)
	}
	if o.Device == "cuda" {
		if err := preferGPU(opts); err != nil {
			return nil, err
		}
	}
	s, err := ort.NewDynamicAdvancedSession(path, []string{ins[0].Name}, outputs, opts)
	if err != nil {
		return nil, fmt.Errorf("onnx: load %s: %w", path, err)
	}
	return &session{sess: s, model: *md, outputs: outputs}, nil
}

// run feeds a batch of images (all of the network's input size) and returns
// each output's flat data.
func (s *session) run(imgs []*imageproc.RGB) ([][]float32, error) {
	if len(imgs) == 0 {
		return nil, errors.New("onnx: empty batch")
	}
	w, h := imgs[0].W, imgs[0].H
	ch := 3
	if s.model.Channels == "GRAY" {
		ch = 1
	}
	per := w * h * ch
	data := make([]float32, per*len(imgs))
	for i, im := range imgs {
		if im.W != w || im.H != h {
			return nil, fmt.Errorf("onnx: batch mixes %d×%d and %d×%d images", w, h, im.W, im.H)
		}
		if err := imageproc.ToTensor(im, imageproc.ChannelOrder(s.model.Channels), s.model.Mean, s.model.Std, data[i*per:(i+1)*per]); err != nil {
			return nil, err
		}
	}
	in, err := ort.NewTensor(ort.NewShape(int64(len(imgs)), int64(ch), int64(h), int64(w)), data)
	if err != nil {
		return nil, fmt.Errorf("onnx: input tensor: %w", err)
	}
	defer in.Destroy()
	outs := make([]ort.Value, len(s.outputs))
	if err := withFlushToZero(func() error { return s.sess.Run([]ort.Value{in}, outs) }); err != nil {
		return nil, fmt.Errorf("onnx: run: %w", err)
	}
	res := make([][]float32, len(outs))
	for i, v := range outs {
		t, ok := v.(*ort.Tensor[float32])
		if !ok {
			v.Destroy()
			return nil, fmt.Errorf("onnx: output %s is not float32", s.outputs[i])
		}
		res[i] = append([]float32(nil), t.GetData()...)
		t.Destroy()
	}
	return res, nil
}

// Detector finds faces in one image.
type Detector struct {
	s        *session
	kind     string
	minScore float64
}

// InputSize returns the fixed input size of the network, or 0, 0 when it
// accepts any size.
func (d *Detector) InputSize() (w, h int) { return d.s.model.Width, d.s.model.Height }

// HasLandmarks reports whether detections carry five landmarks.
func (d *Detector) HasLandmarks() bool { return d.kind == "yunet" }

// maxDetectBatch bounds one detector call on a batch of tiles.
const maxDetectBatch = 16

// DetectBatch runs Detect on several images of the fixed input size, in as
// few network calls as the model allows. Safe for concurrent use.
func (d *Detector) DetectBatch(ctx context.Context, imgs []*imageproc.RGB) ([][]face.Detection, error) {
	if d.kind != "rfb320" || !d.s.model.DynamicBatch {
		out := make([][]face.Detection, len(imgs))
		for i, im := range imgs {
			dets, err := d.Detect(ctx, im)
			if err != nil {
				return nil, err
			}
			out[i] = dets
		}
		return out, nil
	}
	out := make([][]face.Detection, 0, len(imgs))
	for i := 0; i < len(imgs); i += maxDetectBatch {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		part := imgs[i:min(i+maxDetectBatch, len(imgs))]
		for _, im := range part {
			if im.W != d.s.model.Width || im.H != d.s.model.Height {
				return nil, fmt.Errorf("rfb320: input is %d×%d, want %d×%d", im.W, im.H, d.s.model.Width, d.s.model.Height)
			}
		}
		res, err := d.s.run(part)
		if err != nil {
			return nil, err
		}
		ns, nb := len(res[0])/len(part), len(res[1])/len(part)
		for k := range part {
			dets, err := decodeRFB(res[0][k*ns:(k+1)*ns], res[1][k*nb:(k+1)*nb], d.s.model.Width, d.s.model.Height, d.minScore)
			if err != nil {
				return nil, err
			}
			out = append(out, dets)
		}
	}
	return out, nil
}

// Detect returns the faces of img (of the input size when fixed), in img's
// pixel coordinates, before non-maximum suppression. Safe for concurrent use.
func (d *Detector) Detect(ctx context.Context, img *imageproc.RGB) ([]face.Detection, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	switch d.kind {
	case "rfb320":
		if img.W != d.s.model.Width || img.H != d.s.model.Height {
			return nil, fmt.Errorf("rfb320: input is %d×%d, want %d×%d", img.W, img.H, d.s.model.Width, d.s.model.Height)
		}
		out, err := d.s.run([]*imageproc.RGB{img})
		if err != nil {
			return nil, err
		}
		return decodeRFB(out[0], out[1], img.W, img.H, d.minScore)
	case "yunet":
		// YuNet needs sides divisible by its largest stride.
		pw, ph := (img.W+31)/32*32, (img.H+31)/32*32
		in := img
		if pw != img.W || ph != img.H {
			in = imageproc.Crop(img, 0, 0, pw, ph)
		}
		out, err := d.s.run([]*imageproc.RGB{in})
		if err != nil {
			return nil, err
		}
		var lv []yunetLevel
		for i, st := range []int{8, 16, 32} {
			lv = append(lv, yunetLevel{stride: st, cls: out[i], obj: out[3+i], bbox: out[6+i], kps: out[9+i]})
		}
		return decodeYuNet(lv, pw, ph, d.minScore)
	}
	return nil, fmt.Errorf("onnx: unknown detector kind %q", d.kind)
}

// Landmarker locates 68 facial points on a square face crop.
type Landmarker struct{ s *session }

// InputSize returns the side of the square crop the network takes.
func (l *Landmarker) InputSize() int { return l.s.model.Width }

// Landmarks68 returns, for each crop, the 68 points as fractions of the crop
// side (0 = left/top edge, 1 = right/bottom edge). Safe for concurrent use.
func (l *Landmarker) Landmarks68(ctx context.Context, crops []*imageproc.RGB) ([][68]face.Point, error) {
	res := make([][68]face.Point, len(crops))
	for i, c := range crops {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		out, err := l.s.run([]*imageproc.RGB{c})
		if err != nil {
			return nil, err
		}
		if len(out[0]) != 136 {
			return nil, fmt.Errorf("pfld68: output has %d values, want 136", len(out[0]))
		}
		for k := range 68 {
			res[i][k] = face.Point{X: float64(out[0][2*k]), Y: float64(out[0][2*k+1])}
		}
	}
	return res, nil
}

// FivePoints reduces 68 points to the five ArcFace landmarks.
func (l *Landmarker) FivePoints(p [68]face.Point) face.Landmarks { return fivePoints(p) }

// maxBatch bounds one embedder call (a GPU is fastest at 64 to 256 faces).
const maxBatch = 256

// Embedder turns aligned face crops into templates.
type Embedder struct {
	s     *session
	dim   int
	batch bool
}

// Dim returns the template length.
func (e *Embedder) Dim() int { return e.dim }

// InputSize returns the aligned crop size the network takes.
func (e *Embedder) InputSize() (w, h int) { return e.s.model.Width, e.s.model.Height }

// Embed returns one L2-normalised template of length Dim per crop, in
// order; crops are batched when the network allows it. Safe for concurrent use.
func (e *Embedder) Embed(ctx context.Context, crops []*imageproc.RGB) ([]face.Embedding, error) {
	res := make([]face.Embedding, 0, len(crops))
	step := 1
	if e.batch {
		step = maxBatch
	}
	for i := 0; i < len(crops); i += step {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		part := crops[i:min(i+step, len(crops))]
		out, err := e.s.run(part)
		if err != nil {
			return nil, err
		}
		if len(out[0]) != e.dim*len(part) {
			return nil, fmt.Errorf("embedder: output has %d values, want %d", len(out[0]), e.dim*len(part))
		}
		for k := range part {
			res = append(res, face.Normalize(out[0][k*e.dim:(k+1)*e.dim]))
		}
	}
	return res, nil
}
