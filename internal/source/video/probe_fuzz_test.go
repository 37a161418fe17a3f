package video_test

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gabarit/internal/source"
	"gabarit/internal/source/video"
)

// FuzzProbeOutput feeds arbitrary bytes to Probe as ffprobe's JSON output
// (a stand-in ffprobe prints them) and checks that what Probe accepts is
// within the limits: a display size of 1 to MaxDim pixels a side, a
// rotation in [0, 360), a duration in [0, MaxDuration], a finite frame
// rate; and that what it refuses is an *source.ItemError wrapping
// ErrCorrupt or source.ErrTooLarge.
func FuzzProbeOutput(f *testing.F) {
	for _, s := range []string{
		`{"streams":[{"width":1920,"height":1080,"avg_frame_rate":"30000/1001","sample_aspect_ratio":"1:1"}],"format":{"duration":"12.5"}}`,
		`{"streams":[{"width":720,"height":576,"avg_frame_rate":"25/1","sample_aspect_ratio":"64:45","side_data_list":[{"rotation":-90}]}],"format":{"duration":"3600"}}`,
		`{"streams":[{"width":16384,"height":2,"avg_frame_rate":"0/0","sample_aspect_ratio":"2:1"}],"format":{"duration":"N/A"}}`,
		`{"streams":[{"width":640,"height":480,"side_data_list":[{"rotation":1e308},{"rotation":90}]}],"format":{"duration":"1e300"}}`,
		`{"streams":[],"format":{}}`,
		`{}`,
		``,
	} {
		f.Add([]byte(s))
	}
	bin := f.TempDir()
	out := filepath.Join(bin, "probe.json") // calls in one process run one at a time
	for name, script := range map[string]string{
		"ffprobe": "#!/bin/sh\nexec cat \"$GABARIT_FUZZ_PROBE\"\n",
		"ffmpeg":  "#!/bin/sh\nexit 1\n",
	} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(script), 0o755); err != nil {
			f.Fatal(err)
		}
	}
	f.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	f.Setenv("GABARIT_FUZZ_PROBE", out)
	root := f.TempDir()
	if err := os.WriteFile(filepath.Join(root, "v.mp4"), []byte("not read by the stand-in"), 0o644); err != nil {
		f.Fatal(err)
	}
	opts := video.Options{MaxDuration: time.Hour}
	s, err := video.New(root, opts)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(out, data, 0o600); err != nil {
			t.Fatal(err)
		}
		info, err := s.Probe(context.Background(), filepath.Join(root, "v.mp4"))
		if err != nil {
			var ie *source.ItemError
			if !errors.As(err, &ie) || (!errors.Is(err, video.ErrCorrupt) && !errors.Is(err, source.ErrTooLarge)) {
				t.Fatalf("error %v: want an *source.ItemError wrapping ErrCorrupt or ErrTooLarge", err)
			}
			return
		}
		if info.Width < 1 || info.Height < 1 || info.Width > video.MaxDim || info.Height > video.MaxDim {
			t.Fatalf("accepted a display size of %d×%d", info.Width, info.Height)
		}
		if info.Rotation < 0 || info.Rotation >= 360 {
			t.Fatalf("rotation %d", info.Rotation)
		}
		if info.Duration < 0 || info.Duration > opts.MaxDuration {
			t.Fatalf("duration %v, limit %v", info.Duration, opts.MaxDuration)
		}
		if info.FPS < 0 || math.IsNaN(info.FPS) || math.IsInf(info.FPS, 0) {
			t.Fatalf("frame rate %v", info.FPS)
		}
	})
}
