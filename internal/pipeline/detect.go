package pipeline

import (
	"context"
	"math"
	"sort"

	"gabarit/internal/face"
	"gabarit/internal/imageproc"
)

// level is one scale of the detector pyramid.
type level struct {
	scale float64 // level pixels per image pixel
	tiled bool    // false: the whole image in one detector input
	// minH and maxH bound the box heights, in level pixels, that this level
	// reports: the faces it is responsible for. Faces smaller than minH are
	// the finer level's; bigger than maxH, the coarser level's. Other
	// detections at a level are mostly parts of faces and duplicates.
	minH, maxH float64
}

// pyramid plans the scales at which a fixed-input detector (tw×th) must see
// a w×h image to find faces from minFace image pixels up to the whole image.
// A tiled level finds faces from detMin to overlap input pixels; the next
// level is coarser by overlap/detMin; the last level holds the whole image.
func pyramid(w, h, tw, th int, minFace, detMin float64, overlap int) []level {
	fit := math.Min(float64(tw)/float64(w), float64(th)/float64(h)) * fitMargin(w, h, tw, th)
	var ls []level
	ratio := float64(overlap) / detMin
	// The ranges of neighbouring levels overlap by a quarter either way.
	lo, hi := 0.75*detMin, 1.25*float64(overlap)
	for s := detMin / minFace; s > fit*1.05; s /= ratio {
		ls = append(ls, level{scale: s, tiled: true, minH: lo, maxH: hi})
	}
	if len(ls) > 0 {
		ls[0].minH = 0
	}
	last := level{scale: fit, maxH: math.Inf(1)}
	if len(ls) > 0 {
		last.minH = lo
	}
	return append(ls, last)
}

// fitMargin shrinks a whole image that is smaller than the detector input a
// little, so that a face filling its frame still has some background.
func fitMargin(w, h, tw, th int) float64 {
	if w <= tw && h <= th {
		return 0.85
	}
	return 1
}

// tileStarts returns the offsets of tiles of size t covering n pixels with
// the given overlap; the last tile ends at n.
func tileStarts(n, t, overlap int) []int {
	if n <= t {
		return []int{0}
	}
	step := t - overlap
	var xs []int
	for x := 0; ; x += step {
		if x+t >= n {
			xs = append(xs, n-t)
			return xs
		}
		xs = append(xs, x)
	}
}

// detect finds every face of at least minFace image pixels, after NMS, in
// image pixels.
func (p *Pipeline) detect(ctx context.Context, img *imageproc.RGB, minFace float64) ([]face.Detection, error) {
	tw, th := p.det.InputSize()
	var all []face.Detection
	if tw == 0 || th == 0 {
		d, err := p.detectWhole(ctx, img, minFace)
		if err != nil {
			return nil, err
		}
		all = d
	} else {
		// Each level is resampled from the previous, finer one: a cascade
		// costs little more than its first level.
		prev := img
		for _, l := range pyramid(img.W, img.H, tw, th, minFace, p.cfg.DetectorMinFace, p.cfg.TileOverlap) {
			d, li, err := p.detectLevel(ctx, img, prev, l, tw, th)
			if err != nil {
				return nil, err
			}
			if li.W < prev.W {
				prev = li
			}
			all = append(all, d...)
		}
	}
	return NMS(all, p.cfg.NMSIoU), nil
}

// detectLevel runs the detector over one pyramid level and maps the
// detections back to image pixels. On tiled levels a detection touching a
// tile edge inside the level is dropped: the face it cuts is whole in a
// neighbouring tile or found at a coarser level.
//
// The level image is resampled from from, img itself or a finer level
// (nil: img), and returned.
func (p *Pipeline) detectLevel(ctx context.Context, img, from *imageproc.RGB, l level, tw, th int) ([]face.Detection, *imageproc.RGB, error) {
	lw := max(int(math.Round(float64(img.W)*l.scale)), 1)
	lh := max(int(math.Round(float64(img.H)*l.scale)), 1)
	if from == nil || from.W < lw || from.H < lh {
		from = img
	}
	src := imageproc.ResizeArea(from, lw, lh)
	if !l.tiled {
		// Centre the whole image in the input.
		ox, oy := (tw-lw)/2, (th-lh)/2
		in := imageproc.Crop(src, -ox, -oy, tw, th)
		dets, err := p.det.Detect(ctx, in)
		if err != nil {
			return nil, nil, err
		}
		return mapBack(inRange(dets, l), float64(ox), float64(oy), float64(lw)/float64(img.W), float64(lh)/float64(img.H)), src, nil
	}
	const edge = 2.0
	var tiles []*imageproc.RGB
	var origins [][2]int
	for _, y := range tileStarts(lh, th, p.cfg.TileOverlap) {
		for _, x := range tileStarts(lw, tw, p.cfg.TileOverlap) {
			tiles = append(tiles, imageproc.Crop(src, x, y, tw, th))
			origins = append(origins, [2]int{x, y})
		}
	}
	perTile, err := p.detectTiles(ctx, tiles)
	if err != nil {
		return nil, nil, err
	}
	var out []face.Detection
	for i, dets := range perTile {
		x, y := origins[i][0], origins[i][1]
		var whole []face.Detection
		for _, d := range inRange(dets, l) {
			b := d.Box
			if (x > 0 && b.X < edge) || (y > 0 && b.Y < edge) ||
				(x+tw < lw && b.X+b.W > float64(tw)-edge) || (y+th < lh && b.Y+b.H > float64(th)-edge) {
				continue
			}
			whole = append(whole, d)
		}
		out = append(out, mapBack(whole, float64(-x), float64(-y), float64(lw)/float64(img.W), float64(lh)/float64(img.H))...)
	}
	return out, src, nil
}

// batchDetector is a Detector that can run several inputs in one call.
type batchDetector interface {
	DetectBatch(ctx context.Context, imgs []*imageproc.RGB) ([][]face.Detection, error)
}

// detectTiles runs the detector on every tile, batched when it can.
func (p *Pipeline) detectTiles(ctx context.Context, tiles []*imageproc.RGB) ([][]face.Detection, error) {
	if bd, ok := p.det.(batchDetector); ok && len(tiles) > 1 {
		return bd.DetectBatch(ctx, tiles)
	}
	out := make([][]face.Detection, len(tiles))
	for i, t := range tiles {
		dets, err := p.det.Detect(ctx, t)
		if err != nil {
			return nil, err
		}
		out[i] = dets
	}
	return out, nil
}

// inRange keeps the detections whose box height the level is responsible for.
func inRange(dets []face.Detection, l level) []face.Detection {
	out := dets[:0:0]
	for _, d := range dets {
		if d.Box.H >= l.minH && d.Box.H <= l.maxH {
			out = append(out, d)
		}
	}
	return out
}

// mapBack converts detections in detector-input pixels, whose level image
// sits at (ox, oy) in the input, to image pixels (sx, sy: level pixels per
// image pixel).
func mapBack(dets []face.Detection, ox, oy, sx, sy float64) []face.Detection {
	out := make([]face.Detection, len(dets))
	for i, d := range dets {
		b := d.Box
		out[i] = face.Detection{
			Box:   face.Box{X: (b.X - ox) / sx, Y: (b.Y - oy) / sy, W: b.W / sx, H: b.H / sy},
			Score: d.Score,
		}
		if d.Points != nil {
			var lm face.Landmarks
			for k, q := range d.Points {
				lm[k] = face.Point{X: (q.X - ox) / sx, Y: (q.Y - oy) / sy}
			}
			out[i].Points = &lm
		}
	}
	return out
}

// detectWhole runs a detector that takes any size once, on the image scaled
// so that its longer side is at most MaxDetectSide and small images get a
// margin of background.
func (p *Pipeline) detectWhole(ctx context.Context, img *imageproc.RGB, minFace float64) ([]face.Detection, error) {
	long := float64(max(img.W, img.H))
	s := math.Min(1, float64(p.cfg.MaxDetectSide)/long)
	if long*s < 160 {
		s = 160 / long
	}
	lw := max(int(math.Round(float64(img.W)*s)), 1)
	lh := max(int(math.Round(float64(img.H)*s)), 1)
	src := img
	if lw != img.W || lh != img.H {
		src = imageproc.ResizeArea(img, lw, lh)
	}
	pad := 0
	if long < 640 {
		pad = int(math.Max(float64(lw), float64(lh)) * 0.1)
	}
	in := imageproc.Crop(src, -pad, -pad, lw+2*pad, lh+2*pad)
	dets, err := p.det.Detect(ctx, in)
	if err != nil {
		return nil, err
	}
	return mapBack(dets, float64(pad), float64(pad), float64(lw)/float64(img.W), float64(lh)/float64(img.H)), nil
}

// NMS keeps, in descending score order, every detection whose IoU with each
// detection already kept is at most iou (greedy non-maximum suppression).
// The result is sorted by descending score.
func NMS(dets []face.Detection, iou float64) []face.Detection {
	sorted := append([]face.Detection(nil), dets...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Score > sorted[j].Score })
	kept := sorted[:0]
	for _, d := range sorted {
		ok := true
		for _, k := range kept {
			if d.Box.IoU(k.Box) > iou {
				ok = false
				break
			}
		}
		if ok {
			kept = append(kept, d)
		}
	}
	return kept
}
