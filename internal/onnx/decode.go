package onnx

import (
	"fmt"
	"math"

	"gabarit/internal/face"
)

// decodeRFB turns the outputs of the Ultra-Light RFB-320 detector into
// detections in input-pixel coordinates. scores holds n×2 softmax values
// (background, face); boxes holds n×4 corners x1,y1,x2,y2 normalised to the
// input size (the network already decodes its priors).
func decodeRFB(scores, boxes []float32, w, h int, minScore float64) ([]face.Detection, error) {
	n := len(scores) / 2
	if len(scores) != 2*n || len(boxes) != 4*n {
		return nil, fmt.Errorf("rfb320: output sizes %d and %d do not match", len(scores), len(boxes))
	}
	var out []face.Detection
	for i := range n {
		s := float64(scores[2*i+1])
		if s < minScore {
			continue
		}
		x1 := float64(boxes[4*i]) * float64(w)
		y1 := float64(boxes[4*i+1]) * float64(h)
		x2 := float64(boxes[4*i+2]) * float64(w)
		y2 := float64(boxes[4*i+3]) * float64(h)
		if x2 <= x1 || y2 <= y1 {
			continue
		}
		out = append(out, face.Detection{Box: face.Box{X: x1, Y: y1, W: x2 - x1, H: y2 - y1}, Score: s})
	}
	return out, nil
}

// yunetLevel holds one stride's outputs of the YuNet detector.
type yunetLevel struct {
	stride              int
	cls, obj, bbox, kps []float32
}

// decodeYuNet turns YuNet's per-stride outputs into detections with five
// landmarks, in input-pixel coordinates (w×h is the padded input size).
// It follows the head of OpenCV's FaceDetectorYN: one anchor per cell,
// score = sqrt(cls·obj), box centre and landmarks offset by the cell,
// box size exp(·)×stride.
func decodeYuNet(levels []yunetLevel, w, h int, minScore float64) ([]face.Detection, error) {
	var out []face.Detection
	for _, l := range levels {
		cols, rows := w/l.stride, h/l.stride
		n := cols * rows
		if len(l.cls) != n || len(l.obj) != n || len(l.bbox) != 4*n || len(l.kps) != 10*n {
			return nil, fmt.Errorf("yunet: stride %d outputs do not match a %d×%d input", l.stride, w, h)
		}
		st := float64(l.stride)
		for i := range n {
			c := math.Min(math.Max(float64(l.cls[i]), 0), 1)
			o := math.Min(math.Max(float64(l.obj[i]), 0), 1)
			s := math.Sqrt(c * o)
			if s < minScore {
				continue
			}
			cx := (float64(i%cols) + float64(l.bbox[4*i])) * st
			cy := (float64(i/cols) + float64(l.bbox[4*i+1])) * st
			bw := math.Exp(float64(l.bbox[4*i+2])) * st
			bh := math.Exp(float64(l.bbox[4*i+3])) * st
			var lm face.Landmarks
			for k := range 5 {
				lm[k] = face.Point{
					X: (float64(l.kps[10*i+2*k]) + float64(i%cols)) * st,
					Y: (float64(l.kps[10*i+2*k+1]) + float64(i/cols)) * st,
				}
			}
			out = append(out, face.Detection{
				Box:    face.Box{X: cx - bw/2, Y: cy - bh/2, W: bw, H: bh},
				Score:  s,
				Points: &lm,
			})
		}
	}
	return out, nil
}

// fivePoints reduces the 68-point (iBUG 300-W) layout to the five ArcFace
// points: each eye is the mean of its four eyelid points (37,38,40,41 and
// 43,44,46,47), the nose is the tip (30), each mouth corner the mean of the
// outer and inner corner (48,60 and 54,64).
func fivePoints(p [68]face.Point) face.Landmarks {
	mean := func(idx ...int) face.Point {
		var q face.Point
		for _, i := range idx {
			q.X += p[i].X
			q.Y += p[i].Y
		}
		return face.Point{X: q.X / float64(len(idx)), Y: q.Y / float64(len(idx))}
	}
	return face.Landmarks{
		mean(37, 38, 40, 41),
		mean(43, 44, 46, 47),
		p[30],
		mean(48, 60),
		mean(54, 64),
	}
}
