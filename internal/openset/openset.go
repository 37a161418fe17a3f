// Package openset turns face similarities into open-set identification
// decisions that hold whatever the size of the gallery.
//
// A pairwise threshold chosen for a false-accept rate f returns about N·f
// faces of strangers when a probe is compared with N stored faces. So the
// decision is set for the gallery: the impostor tail of the model (the
// share of faces of other people at or above each similarity, measured on
// labelled photos and extrapolated beyond the measured range) gives the
// operating point, the least similarity at which a search for someone who
// is not held returns anything in at most a target share of searches (the
// false-positive identification rate, FPIR), and the number of strangers
// expected at any similarity in a gallery of N faces.
package openset

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// TailPoint is one point of an impostor tail: the share FAR of comparisons
// of faces of different people whose cosine similarity is at least Score.
type TailPoint struct {
	Score float64 `json:"score"`
	FAR   float64 `json:"far"`
}

// Calibration is a model's impostor tail. Between its points the log of
// the FAR is interpolated linearly in the score; before the first point it
// goes on with the first segment's slope (up to a FAR of 1); beyond the
// last point it
// falls on as a straight line in log-space with the slope of the last
// Fit points (an exponential tail), so that galleries larger than the
// calibration set still get an operating point. The zero value is not
// usable: build one with New.
type Calibration struct {
	points []TailPoint // increasing scores, strictly decreasing FAR
	slope  float64     // d log10(FAR) / d score beyond the last point (< 0)
}

// New checks a tail and returns its calibration. Points must have
// increasing scores in (-1, 1) and strictly decreasing FARs in (0, 1];
// slope is the log10 FAR per unit of score beyond the last point, < 0.
func New(points []TailPoint, slope float64) (*Calibration, error) {
	if len(points) < 2 {
		return nil, errors.New("openset: a tail needs at least two points")
	}
	for i, p := range points {
		if !(p.Score > -1 && p.Score < 1) || !(p.FAR > 0 && p.FAR <= 1) {
			return nil, fmt.Errorf("openset: point %d (%v, %v) outside (-1,1) × (0,1]", i, p.Score, p.FAR)
		}
		if i > 0 && (p.Score <= points[i-1].Score || p.FAR >= points[i-1].FAR) {
			return nil, fmt.Errorf("openset: point %d: scores must increase and FARs decrease", i)
		}
	}
	if !(slope < 0) || math.IsInf(slope, 0) {
		return nil, fmt.Errorf("openset: tail slope %v must be negative", slope)
	}
	return &Calibration{points: slices.Clone(points), slope: slope}, nil
}

// FAR returns the share of impostor comparisons at or above similarity s.
func (c *Calibration) FAR(s float64) float64 {
	p := c.points
	switch {
	case s <= p[0].Score:
		// Before the first point, the first segment's slope, up to 1: an
		// estimate, never an understatement of how common such scores are.
		a, b := p[0], p[1]
		slope := (math.Log10(b.FAR) - math.Log10(a.FAR)) / (b.Score - a.Score)
		return math.Min(1, a.FAR*math.Pow(10, slope*(s-a.Score)))
	case s >= p[len(p)-1].Score:
		last := p[len(p)-1]
		return last.FAR * math.Pow(10, c.slope*(s-last.Score))
	}
	i, _ := slices.BinarySearchFunc(p, s, func(tp TailPoint, s float64) int {
		if tp.Score < s {
			return -1
		}
		return 1
	})
	a, b := p[i-1], p[i]
	t := (s - a.Score) / (b.Score - a.Score)
	return math.Pow(10, math.Log10(a.FAR)+t*(math.Log10(b.FAR)-math.Log10(a.FAR)))
}

// Score returns the least similarity whose FAR is at most far: the
// inverse of FAR.
func (c *Calibration) Score(far float64) float64 {
	p := c.points
	switch {
	case far >= 1:
		return -1
	case far >= p[0].FAR:
		a, b := p[0], p[1]
		slope := (math.Log10(b.FAR) - math.Log10(a.FAR)) / (b.Score - a.Score)
		return math.Max(-1, a.Score+(math.Log10(far)-math.Log10(a.FAR))/slope)
	case far <= p[len(p)-1].FAR:
		last := p[len(p)-1]
		return last.Score + (math.Log10(far)-math.Log10(last.FAR))/c.slope
	}
	i, _ := slices.BinarySearchFunc(p, far, func(tp TailPoint, far float64) int {
		if tp.FAR > far {
			return -1
		}
		return 1
	})
	a, b := p[i-1], p[i]
	t := (math.Log10(far) - math.Log10(a.FAR)) / (math.Log10(b.FAR) - math.Log10(a.FAR))
	return a.Score + t*(b.Score-a.Score)
}

// OperatingPoint returns the least similarity at which, among n stored
// faces of other people, a search returns anything in at most a share fpir
// of searches: the score whose per-face FAR f satisfies 1-(1-f)^n = fpir.
// n < 1 is taken as 1. The result is at most 0.9999.
func (c *Calibration) OperatingPoint(n int, fpir float64) float64 {
	n = max(n, 1)
	f := -math.Expm1(math.Log1p(-fpir) / float64(n))
	return math.Min(c.Score(f), 0.9999)
}

// Strangers returns the number of faces of other people expected at
// similarity s or above among n stored faces.
func (c *Calibration) Strangers(s float64, n int) float64 {
	return float64(max(n, 0)) * c.FAR(s)
}

// Points returns a copy of the tail's points.
func (c *Calibration) Points() []TailPoint { return slices.Clone(c.points) }

// Slope returns the tail's log10 FAR per unit of score beyond its last
// point.
func (c *Calibration) Slope() float64 { return c.slope }
