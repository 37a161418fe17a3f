package eval

import (
	"bytes"
	"image/png"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
)

// syntheticScores is an LFW-sized set: 10 folds of 300+300 pairs, positives
// around 0.55 and negatives around 0.05, 10 failed positive pairs and one
// failed negative pair.
func syntheticScores(seed uint64) []Score {
	rng := rand.New(rand.NewPCG(seed, 2))
	var s []Score
	for f := range 10 {
		for i := range 600 {
			same := i < 300
			sim := rng.NormFloat64()*0.1 + 0.05
			if same {
				sim = rng.NormFloat64()*0.15 + 0.55
			}
			s = append(s, Score{Fold: f, Same: same, Sim: sim, Failed: i == 7 || f*600+i == 599})
		}
	}
	return s
}

func TestWriteROCPNG(t *testing.T) {
	t.Parallel()
	scores := syntheticScores(1)
	v, err := Verify(scores)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		scores  []Score
		wantErr string
	}{
		{name: "lfw-sized set", scores: scores},
		{name: "tiny set", scores: separable},
		{name: "no negatives", scores: []Score{sc(0, true, 1)}, wantErr: "need both"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			err := WriteROCPNG(&buf, "synthetic ROC ("+tc.name+")", tc.scores, v)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("WriteROCPNG error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			img, err := png.Decode(bytes.NewReader(buf.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			if b := img.Bounds(); b.Dx() != 800 || b.Dy() != 600 {
				t.Errorf("size %v, want 800×600", b)
			}
			curve := 0
			for y := plotTop; y < plotBottom; y++ {
				for x := plotLeft; x < plotRight; x++ {
					if r, g, b, _ := img.At(x, y).RGBA(); r>>8 == uint32(colCurve.R) && g>>8 == uint32(colCurve.G) && b>>8 == uint32(colCurve.B) {
						curve++
					}
				}
			}
			if curve < 50 {
				t.Errorf("only %d curve pixels", curve)
			}
			// EVAL_ROC_PNG=/tmp/roc_test.png keeps the plot for a look.
			if out := os.Getenv("EVAL_ROC_PNG"); out != "" && tc.name == "lfw-sized set" {
				if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}
