package eval

import (
	"fmt"
	"math"
	"runtime"
	"slices"
	"sort"
	"sync"
	"sync/atomic"

	"gabarit/internal/openset"
)

// Photo is one photo of an open-set evaluation, with every face found in
// it.
type Photo struct {
	Set        string // the folder of the set
	Identity   string // the person the photo is labelled with; "" when unlabelled
	File       string
	Distractor bool // from a set of other people only
	Subject    int  // index in Faces of the photo's subject; -1 without faces
	Faces      []PhotoFace
}

// PhotoFace is one face of a Photo.
type PhotoFace struct {
	Emb     []float32 // L2-normalised template
	Quality float64
	Size    float64 // box height, pixels
}

// ImpostorScores returns the similarity of the subject face of each photo
// to every face of every photo of another labelled identity: the
// comparisons a search for a person makes with the faces of other people.
// Photos without a label or a subject probe nothing; unlabelled photos'
// faces are compared with every probe.
func ImpostorScores(photos []Photo) []float64 {
	var mu sync.Mutex
	var out []float64
	var next atomic.Int64
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var local []float64
			for {
				i := int(next.Add(1) - 1)
				if i >= len(photos) {
					break
				}
				a := photos[i]
				if a.Identity == "" || a.Subject < 0 {
					continue
				}
				q := a.Faces[a.Subject].Emb
				for _, b := range photos {
					if b.Identity == a.Identity {
						continue
					}
					for _, f := range b.Faces {
						local = append(local, float64(dot(q, f.Emb)))
					}
				}
			}
			mu.Lock()
			out = append(out, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// TailFARs are the false-accept rates at which FitTail places its points.
var TailFARs = []float64{1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5, 3e-6, 1e-6, 3e-7, 1e-7}

// FitTail measures an impostor tail: a point at each of TailFARs that at
// least minCount impostor scores support, and the slope of log10 FAR
// against the score over the points from FAR 1e-4 on (least squares), for
// extrapolation beyond the last point.
func FitTail(impostors []float64, minCount int) (points []openset.TailPoint, slope float64, err error) {
	s := slices.Clone(impostors)
	slices.Sort(s)
	n := float64(len(s))
	for _, far := range TailFARs {
		k := int(math.Floor(far * n)) // impostors at or above the point
		if k < minCount {
			break
		}
		score := s[len(s)-k]
		got := float64(len(s)-sort.SearchFloat64s(s, score)) / n
		if len(points) > 0 && (score <= points[len(points)-1].Score || got >= points[len(points)-1].FAR) {
			continue
		}
		points = append(points, openset.TailPoint{Score: score, FAR: got})
	}
	if len(points) < 3 {
		return nil, 0, fmt.Errorf("fit tail: %d impostor scores support only %d points", len(s), len(points))
	}
	var xs, ys []float64
	for _, p := range points {
		if p.FAR <= 1e-4*1.0001 {
			xs = append(xs, p.Score)
			ys = append(ys, math.Log10(p.FAR))
		}
	}
	if len(xs) < 2 {
		xs, ys = nil, nil
		for _, p := range points[len(points)-2:] {
			xs = append(xs, p.Score)
			ys = append(ys, math.Log10(p.FAR))
		}
	}
	mx, my := mean(xs), mean(ys)
	var sxy, sxx float64
	for i := range xs {
		sxy += (xs[i] - mx) * (ys[i] - my)
		sxx += (xs[i] - mx) * (xs[i] - mx)
	}
	slope = sxy / sxx
	if !(slope < 0) {
		return nil, 0, fmt.Errorf("fit tail: slope %v is not negative", slope)
	}
	return points, slope, nil
}

func mean(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}
