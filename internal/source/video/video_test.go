package video_test

import (
	"context"
	"errors"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gabarit/internal/modeltest"
	"gabarit/internal/source"
	"gabarit/internal/source/video"
)

// makeVideo writes a video at dir/name with ffmpeg; args are ffmpeg's
// input and encoding arguments.
func makeVideo(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ffmpeg", append(append([]string{"-nostdin", "-v", "error", "-y"}, args...), "file:"+p)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make %s: %v\n%s", name, err, out)
	}
	return p
}

// rotate marks the mp4 video at p as to be displayed turned a quarter, by
// remuxing it into p with the rotation in its metadata, and returns p.
func rotate(t *testing.T, p string) string {
	t.Helper()
	tmp := p + ".tmp.mp4"
	cmd := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-y", "-i", "file:"+p, "-c", "copy", "-metadata:s:v", "rotate=90", "file:"+tmp)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("rotate %s: %v\n%s", p, err, out)
	}
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
	return p
}

// testsrc returns ffmpeg arguments for a w×h test pattern video of d seconds
// at 10 frames per second.
func testsrc(w, h int, d float64, extra ...string) []string {
	args := []string{"-f", "lavfi", "-i", "testsrc=size=" + strconv.Itoa(w) + "x" + strconv.Itoa(h) + ":rate=10",
		"-t", strconv.FormatFloat(d, 'f', -1, 64), "-pix_fmt", "yuv420p"}
	return append(args, extra...)
}

func newSource(t *testing.T, root string, opts video.Options) *video.Source {
	t.Helper()
	s, err := video.New(root, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

// frameInfo is what a test keeps of one frame.
type frameInfo struct {
	index int
	time  time.Duration
	w, h  int
}

func frames(t *testing.T, s *video.Source, p string, every time.Duration) ([]frameInfo, error) {
	t.Helper()
	var got []frameInfo
	err := s.Frames(t.Context(), p, every, func(f video.Frame) error {
		if err := f.Image.Validate(); err != nil {
			t.Errorf("frame %d: %v", f.Index, err)
		}
		got = append(got, frameInfo{f.Index, f.Time, f.Image.W, f.Image.H})
		return nil
	})
	return got, err
}

func TestFrames(t *testing.T) {
	modeltest.FFmpeg(t)
	t.Parallel()
	tests := []struct {
		name    string
		file    string
		args    []string
		opts    video.Options
		every   time.Duration
		n       int // frames expected
		w, h    int
		timeGap time.Duration // expected interval between time codes
		rotate  bool          // mark the video as turned a quarter (see rotate)
	}{
		{name: "mp4 default interval", file: "a.mp4", args: testsrc(320, 240, 3), n: 6, w: 320, h: 240, timeGap: 500 * time.Millisecond},
		{name: "mp4 one per second", file: "b.mp4", args: testsrc(320, 240, 3), every: time.Second, n: 3, w: 320, h: 240, timeGap: time.Second},
		{name: "mp4 300 ms", file: "c.mp4", args: testsrc(320, 240, 3), every: 300 * time.Millisecond, n: 10, w: 320, h: 240, timeGap: 300 * time.Millisecond},
		{name: "scaled down", file: "d.mp4", args: testsrc(320, 240, 2), opts: video.Options{MaxSide: 160}, n: 4, w: 160, h: 120, timeGap: 500 * time.Millisecond},
		{name: "portrait scaled down", file: "e.mov", args: testsrc(240, 320, 2), opts: video.Options{MaxSide: 100}, n: 4, w: 75, h: 100, timeGap: 500 * time.Millisecond},
		{name: "rotated", file: "r.mp4", args: testsrc(320, 240, 2), rotate: true, n: 4, w: 240, h: 320, timeGap: 500 * time.Millisecond},
		{name: "anamorphic", file: "s.mkv", args: testsrc(320, 240, 2, "-vf", "setsar=2/1"), opts: video.Options{MaxSide: 320}, n: 4, w: 320, h: 120, timeGap: 500 * time.Millisecond},
		{name: "odd size", file: "o.avi", args: []string{"-f", "lavfi", "-i", "testsrc=size=33x17:rate=10", "-t", "1", "-c:v", "mpeg4"}, n: 2, w: 33, h: 17, timeGap: 500 * time.Millisecond},
		{name: "webm", file: "w.webm", args: testsrc(64, 48, 2, "-c:v", "libvpx-vp9", "-deadline", "realtime"), n: 4, w: 64, h: 48, timeGap: 500 * time.Millisecond},
		{name: "name starting with a dash", file: "-i.m4v", args: testsrc(64, 48, 1), n: 2, w: 64, h: 48, timeGap: 500 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := makeVideo(t, t.TempDir(), tt.file, tt.args...)
			if tt.rotate {
				p = rotate(t, p)
			}
			s := newSource(t, p, tt.opts)
			got, err := frames(t, s, p, tt.every)
			if err != nil {
				t.Fatalf("Frames: %v", err)
			}
			if len(got) != tt.n {
				t.Fatalf("got %d frames, want %d: %v", len(got), tt.n, got)
			}
			for i, f := range got {
				want := frameInfo{i, time.Duration(i) * tt.timeGap, tt.w, tt.h}
				if f != want {
					t.Errorf("frame %d = %+v, want %+v", i, f, want)
				}
			}
		})
	}
}

// TestFrameContent checks that the pixels are RGB in order and that each
// time code shows what the video shows at that time: red during the first
// second, blue after.
func TestFrameContent(t *testing.T) {
	modeltest.FFmpeg(t)
	t.Parallel()
	dir := t.TempDir()
	p := makeVideo(t, dir, "c.mp4", "-f", "lavfi",
		"-i", "nullsrc=s=64x48:r=10,format=rgb24,geq=r='if(lt(T,1),255,0)':g=0:b='if(lt(T,1),0,255)'",
		"-t", "2", "-pix_fmt", "yuv420p")
	s := newSource(t, dir, video.Options{})
	var got []string
	err := s.Frames(t.Context(), p, 250*time.Millisecond, func(f video.Frame) error {
		o := (f.Image.H/2*f.Image.W + f.Image.W/2) * 3
		got = append(got, f.Time.String()+"="+colorName(f.Image.Pix[o:o+3]))
		return nil
	})
	if err != nil {
		t.Fatalf("Frames: %v", err)
	}
	want := []string{"0s=red", "250ms=red", "500ms=red", "750ms=red", "1s=blue", "1.25s=blue", "1.5s=blue", "1.75s=blue"}
	if !slices.Equal(got, want) {
		t.Errorf("frames = %v, want %v", got, want)
	}
}

func colorName(rgb []byte) string {
	switch {
	case rgb[0] > 200 && rgb[1] < 50 && rgb[2] < 50:
		return "red"
	case rgb[0] < 50 && rgb[1] < 50 && rgb[2] > 200:
		return "blue"
	}
	return "other(" + strconv.Itoa(int(rgb[0])) + "," + strconv.Itoa(int(rgb[1])) + "," + strconv.Itoa(int(rgb[2])) + ")"
}

// TestStillImage makes a video from a still image (left half red, right
// half blue) and checks the frames show it the right way round.
func TestStillImage(t *testing.T) {
	modeltest.FFmpeg(t)
	t.Parallel()
	dir := t.TempDir()
	img := image.NewRGBA(image.Rect(0, 0, 200, 100))
	for y := range 100 {
		for x := range 200 {
			c := color.RGBA{255, 0, 0, 255}
			if x >= 100 {
				c = color.RGBA{0, 0, 255, 255}
			}
			img.Set(x, y, c)
		}
	}
	still := filepath.Join(t.TempDir(), "still.png")
	fh, err := os.Create(still)
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(fh, img); err != nil {
		t.Fatal(err)
	}
	if err := fh.Close(); err != nil {
		t.Fatal(err)
	}
	p := makeVideo(t, dir, "still.mp4", "-loop", "1", "-i", "file:"+still, "-t", "2", "-r", "5", "-pix_fmt", "yuv420p")
	s := newSource(t, dir, video.Options{MaxSide: 100})
	n := 0
	err = s.Frames(t.Context(), p, time.Second, func(f video.Frame) error {
		n++
		if f.Image.W != 100 || f.Image.H != 50 {
			t.Fatalf("frame %d is %d×%d, want 100×50", f.Index, f.Image.W, f.Image.H)
		}
		left := f.Image.Pix[(25*100+10)*3:][:3]
		right := f.Image.Pix[(25*100+90)*3:][:3]
		if colorName(left) != "red" || colorName(right) != "blue" {
			t.Errorf("frame %d: left %s, right %s, want red and blue", f.Index, colorName(left), colorName(right))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Frames: %v", err)
	}
	if n != 2 {
		t.Errorf("got %d frames, want 2", n)
	}
}

func TestProbe(t *testing.T) {
	modeltest.FFmpeg(t)
	t.Parallel()
	dir := t.TempDir()
	p := makeVideo(t, dir, "a.mp4", testsrc(320, 240, 3)...)
	r := rotate(t, makeVideo(t, dir, "r.mp4", testsrc(320, 240, 1)...))
	s := newSource(t, dir, video.Options{})
	info, err := s.Probe(t.Context(), p)
	if err != nil {
		t.Fatalf("Probe: %v", err)
	}
	if want := (video.Info{Width: 320, Height: 240, Duration: 3 * time.Second, FPS: 10}); info != want {
		t.Errorf("Probe = %+v, want %+v", info, want)
	}
	info, err = s.Probe(t.Context(), r)
	if err != nil {
		t.Fatalf("Probe rotated: %v", err)
	}
	if info.Width != 240 || info.Height != 320 || (info.Rotation != 90 && info.Rotation != 270) {
		t.Errorf("Probe rotated = %+v, want 240×320 turned a quarter", info)
	}
}

// wantItemError checks that err is an *source.ItemError naming loc and
// wrapping target.
func wantItemError(t *testing.T, err error, loc string, target error) {
	t.Helper()
	var ie *source.ItemError
	if !errors.As(err, &ie) || ie.Locator != loc {
		t.Fatalf("error %v is not an *source.ItemError naming %q", err, loc)
	}
	if !errors.Is(err, target) {
		t.Fatalf("error %v does not wrap %v", err, target)
	}
}

func TestTruncated(t *testing.T) {
	modeltest.FFmpeg(t)
	t.Parallel()
	src := t.TempDir()
	dir := t.TempDir()
	tests := []struct {
		name   string
		args   []string
		stderr string // expected in the error: ffmpeg's or ffprobe's own words
	}{
		{name: "index at end.mp4", args: testsrc(320, 240, 3), stderr: "moov atom not found"},
		{name: "index first.mp4", args: testsrc(320, 240, 3, "-movflags", "+faststart"), stderr: "partial file"},
		{name: "cut.webm", args: testsrc(320, 240, 3, "-c:v", "libvpx-vp9", "-deadline", "realtime"), stderr: "ended prematurely"},
		{name: "noise.mkv"},
	}
	for _, tt := range tests {
		var data []byte
		if tt.args != nil {
			full, err := os.ReadFile(makeVideo(t, src, tt.name, tt.args...))
			if err != nil {
				t.Fatal(err)
			}
			data = full[:len(full)/2]
		} else {
			data = []byte(strings.Repeat("not a video ", 1000))
		}
		if err := os.WriteFile(filepath.Join(dir, tt.name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := newSource(t, dir, video.Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := frames(t, s, filepath.Join(s.Root(), tt.name), 0)
			if err == nil {
				t.Fatal("Frames succeeded on a truncated file")
			}
			wantItemError(t, err, tt.name, video.ErrCorrupt)
			if !strings.Contains(err.Error(), strconv.Quote(tt.name)) || !strings.Contains(err.Error(), tt.stderr) {
				t.Errorf("error %q does not name the file or quote %q", err, tt.stderr)
			}
			if len(err.Error()) > 2500 {
				t.Errorf("error is %d bytes long", len(err.Error()))
			}
		})
	}
}

// children returns the ids of this process's live child processes named
// name (Linux only).
func children(t *testing.T, name string) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		// TestStop runs only on Linux, which always has /proc.
		t.Fatalf("read /proc: %v", err)
	}
	var ids []int
	for _, e := range entries {
		id, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		s := string(stat)
		i := strings.LastIndexByte(s, ')')
		if i < 0 || !strings.Contains(s[:i], "("+name) {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) > 1 && f[0] != "Z" && f[1] == strconv.Itoa(os.Getpid()) {
			ids = append(ids, id)
		}
	}
	return ids
}

// TestStop checks that ctx cancellation and a callback error stop ffmpeg
// promptly and that ffmpeg has exited when Frames returns. Not parallel: it
// counts this process's ffmpeg children.
func TestStop(t *testing.T) {
	modeltest.FFmpeg(t)
	if runtime.GOOS != "linux" {
		t.Skip("not Linux: the check counts ffmpeg child processes through /proc; CI runs it on Linux")
	}
	dir := t.TempDir()
	p := makeVideo(t, dir, "long.mp4", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-t", "30",
		"-pix_fmt", "yuv420p", "-c:v", "libx264", "-preset", "ultrafast")
	s := newSource(t, dir, video.Options{})
	errStop := errors.New("enough")
	tests := []struct {
		name    string
		stopAt  int // the call that stops
		cancel  bool
		wantErr error
	}{
		{name: "cancel", stopAt: 1, cancel: true, wantErr: context.Canceled},
		{name: "callback error", stopAt: 3, wantErr: errStop},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			calls, running := 0, 0
			start := time.Now()
			err := s.Frames(ctx, p, 40*time.Millisecond, func(f video.Frame) error {
				calls++
				running = len(children(t, "ffmpeg"))
				if calls == tt.stopAt {
					if tt.cancel {
						cancel()
						return nil
					}
					return errStop
				}
				return nil
			})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Frames = %v, want %v", err, tt.wantErr)
			}
			if calls != tt.stopAt {
				t.Errorf("callback called %d times, want %d", calls, tt.stopAt)
			}
			if running != 1 {
				t.Errorf("%d ffmpeg children while decoding, want 1", running)
			}
			if left := children(t, "ffmpeg"); len(left) != 0 {
				t.Errorf("ffmpeg still running after Frames returned: %v", left)
			}
			if d := time.Since(start); d > 20*time.Second {
				t.Errorf("Frames took %v to stop", d)
			}
		})
	}
}

func TestStalled(t *testing.T) {
	modeltest.FFmpeg(t)
	t.Parallel()
	dir := t.TempDir()
	p := makeVideo(t, dir, "a.mp4", testsrc(64, 48, 1)...)
	s := newSource(t, dir, video.Options{StallTimeout: time.Nanosecond})
	err := s.Frames(t.Context(), p, 0, func(video.Frame) error { return nil })
	wantItemError(t, err, "a.mp4", video.ErrStalled)
}

func TestLimits(t *testing.T) {
	modeltest.FFmpeg(t)
	t.Parallel()
	dir := t.TempDir()
	p := makeVideo(t, dir, "a.mp4", testsrc(320, 240, 3)...)
	tests := []struct {
		name string
		opts video.Options
	}{
		{name: "duration", opts: video.Options{MaxDuration: 2 * time.Second}},
		{name: "bytes", opts: video.Options{MaxBytes: 100}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newSource(t, dir, tt.opts)
			n := 0
			err := s.Frames(t.Context(), p, 0, func(video.Frame) error { n++; return nil })
			wantItemError(t, err, "a.mp4", source.ErrTooLarge)
			if n != 0 {
				t.Errorf("%d frames decoded from a refused video", n)
			}
			_, err = s.Probe(t.Context(), p)
			wantItemError(t, err, "a.mp4", source.ErrTooLarge)
			var walked []error
			if err := s.Walk(t.Context(), func(v video.Video, err error) error {
				walked = append(walked, err)
				return nil
			}); err != nil {
				t.Fatalf("Walk: %v", err)
			}
			if len(walked) != 1 {
				t.Fatalf("Walk reported %d files, want 1", len(walked))
			}
			wantItemError(t, walked[0], "a.mp4", source.ErrTooLarge)
		})
	}
}

func TestFramesInterval(t *testing.T) {
	modeltest.FFmpeg(t)
	t.Parallel()
	dir := t.TempDir()
	p := makeVideo(t, dir, "a.mp4", testsrc(64, 48, 1)...)
	s := newSource(t, dir, video.Options{})
	for _, every := range []time.Duration{-time.Second, time.Millisecond} {
		if err := s.Frames(t.Context(), p, every, func(video.Frame) error { return nil }); err == nil {
			t.Errorf("Frames accepted interval %v", every)
		}
	}
}

func TestWalk(t *testing.T) {
	modeltest.FFmpeg(t)
	t.Parallel()
	base := t.TempDir()
	root := filepath.Join(base, "root")
	for _, name := range []string{"a.mp4", "a/b.MKV", "b/c.webm", "-dash.mov", ".hidden.mp4", ".git/d.mp4"} {
		makeVideo(t, root, name, testsrc(64, 48, 1)...)
	}
	if err := os.WriteFile(filepath.Join(root, "notes.mp4.txt"), []byte("not listed"), 0o644); err != nil {
		t.Fatal(err)
	}
	makeVideo(t, base, "secret.mp4", testsrc(64, 48, 1)...)
	makeVideo(t, root, "sound.mp4", "-f", "lavfi", "-i", "sine=d=1", "-c:a", "aac")
	if err := os.WriteFile(filepath.Join(root, "fake.avi"), []byte("RIFF....AVI junk"), 0o644); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{
		"evil.mp4":     filepath.Join(base, "secret.mp4"), // escapes: refused
		"evil-dir":     base,                              // escapes: refused even without a video name
		"link.mp4":     filepath.Join(root, "a.mp4"),      // inside: listed
		"loop-dir.mp4": root,                              // directory inside: not followed
	} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	s := newSource(t, root, video.Options{})
	var order []string
	listed := map[string]video.Video{}
	failed := map[string]error{}
	err := s.Walk(t.Context(), func(v video.Video, err error) error {
		order = append(order, v.Locator)
		if err != nil {
			var ie *source.ItemError
			if !errors.As(err, &ie) || ie.Locator != v.Locator {
				t.Errorf("error %v is not an *source.ItemError naming %q", err, v.Locator)
			}
			failed[v.Locator] = err
			return nil
		}
		listed[v.Locator] = v
		return nil
	})
	if err != nil {
		t.Fatalf("Walk: %v", err)
	}
	wantOrder := []string{"-dash.mov", "a.mp4", "a/b.MKV", "b/c.webm", "evil-dir", "evil.mp4", "fake.avi", "link.mp4", "sound.mp4"}
	if !slices.Equal(order, wantOrder) {
		t.Errorf("Walk order = %q, want %q", order, wantOrder)
	}
	for _, loc := range []string{"-dash.mov", "a.mp4", "a/b.MKV", "b/c.webm", "link.mp4"} {
		v, ok := listed[loc]
		if !ok {
			t.Errorf("%s not listed (error %v)", loc, failed[loc])
			continue
		}
		if want := filepath.Join(s.Root(), filepath.FromSlash(loc)); v.Path != want {
			t.Errorf("%s: Path = %q, want %q", loc, v.Path, want)
		}
		fi, err := os.Stat(v.Path)
		if err != nil {
			t.Fatal(err)
		}
		if v.Size != fi.Size() || !v.ModTime.Equal(fi.ModTime()) {
			t.Errorf("%s: size %d modtime %v, want %d %v", loc, v.Size, v.ModTime, fi.Size(), fi.ModTime())
		}
		if v.Info.Width != 64 || v.Info.Height != 48 || v.Info.Duration != time.Second {
			t.Errorf("%s: Info = %+v", loc, v.Info)
		}
	}
	for loc, target := range map[string]error{"evil.mp4": source.ErrEscape, "evil-dir": source.ErrEscape, "fake.avi": video.ErrCorrupt, "sound.mp4": video.ErrCorrupt} {
		if err := failed[loc]; !errors.Is(err, target) {
			t.Errorf("%s: error %v, want %v", loc, err, target)
		}
	}
	if !strings.Contains(failed["sound.mp4"].Error(), "no video stream") {
		t.Errorf("sound.mp4: error %v does not say there is no video stream", failed["sound.mp4"])
	}

	// Frames and Probe refuse files outside the collection.
	outside := filepath.Join(base, "secret.mp4")
	if _, err := s.Probe(t.Context(), outside); !errors.Is(err, source.ErrEscape) {
		t.Errorf("Probe outside the root = %v, want ErrEscape", err)
	}
	if err := s.Frames(t.Context(), filepath.Join(root, "evil.mp4"), 0, func(video.Frame) error { return nil }); !errors.Is(err, source.ErrEscape) {
		t.Errorf("Frames through an escaping symlink = %v, want ErrEscape", err)
	}
	if err := s.Frames(t.Context(), filepath.Join(root, "..", "secret.mp4"), 0, func(video.Frame) error { return nil }); !errors.Is(err, source.ErrEscape) {
		t.Errorf("Frames on root/../x = %v, want ErrEscape", err)
	}
}

func TestWalkSingleFile(t *testing.T) {
	modeltest.FFmpeg(t)
	t.Parallel()
	dir := t.TempDir()
	p := makeVideo(t, dir, "clip.mp4", testsrc(64, 48, 1)...)
	makeVideo(t, dir, "other.mp4", testsrc(64, 48, 1)...)
	s := newSource(t, p, video.Options{})
	var got []video.Video
	if err := s.Walk(t.Context(), func(v video.Video, err error) error {
		if err != nil {
			t.Errorf("Walk: %v", err)
		}
		got = append(got, v)
		return nil
	}); err != nil {
		t.Fatalf("Walk: %v", err)
	}
	if len(got) != 1 || got[0].Locator != "clip.mp4" {
		t.Fatalf("Walk listed %+v, want clip.mp4 alone", got)
	}
	if _, err := frames(t, s, got[0].Path, 0); err != nil {
		t.Errorf("Frames: %v", err)
	}
	// A single-file source holds that file only.
	if _, err := s.Probe(t.Context(), filepath.Join(dir, "other.mp4")); !errors.Is(err, source.ErrEscape) {
		t.Errorf("Probe of a sibling = %v, want ErrEscape", err)
	}
}

func TestNewErrors(t *testing.T) {
	modeltest.FFmpeg(t)
	t.Parallel()
	dir := t.TempDir()
	txt := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(txt, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, root := range []string{filepath.Join(dir, "missing"), txt} {
		if _, err := video.New(root, video.Options{}); err == nil {
			t.Errorf("New(%s) succeeded", root)
		}
	}
}

func TestNoFFmpeg(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := video.New(t.TempDir(), video.Options{})
	if !errors.Is(err, video.ErrNoFFmpeg) || !strings.Contains(err.Error(), "apt-get install ffmpeg") {
		t.Fatalf("New without ffmpeg = %v, want ErrNoFFmpeg saying how to install it", err)
	}
}

// TestFrameAt: the frame at a time code is the one Frames gave there, at
// the same size, so that boxes of sampled frames apply to it; a time code
// past the end has no frame.
func TestFrameAt(t *testing.T) {
	modeltest.FFmpeg(t)
	t.Parallel()
	dir := t.TempDir()
	p := makeVideo(t, dir, "c.mp4", "-f", "lavfi",
		"-i", "nullsrc=s=64x48:r=10,format=rgb24,geq=r='if(lt(T,1),255,0)':g=0:b='if(lt(T,1),0,255)'",
		"-t", "2", "-pix_fmt", "yuv420p")
	s := newSource(t, dir, video.Options{MaxSide: 32})
	for _, tc := range []struct {
		at   time.Duration
		want string
	}{{0, "red"}, {500 * time.Millisecond, "red"}, {1250 * time.Millisecond, "blue"}, {1750 * time.Millisecond, "blue"}} {
		img, err := s.FrameAt(t.Context(), p, tc.at)
		if err != nil {
			t.Fatalf("FrameAt(%v): %v", tc.at, err)
		}
		if img.W != 32 || img.H != 24 || img.Validate() != nil {
			t.Fatalf("FrameAt(%v): %dx%d, want the sampled frames' 32x24", tc.at, img.W, img.H)
		}
		o := (img.H/2*img.W + img.W/2) * 3
		if got := colorName(img.Pix[o : o+3]); got != tc.want {
			t.Errorf("FrameAt(%v) = %s, want %s", tc.at, got, tc.want)
		}
	}
	if _, err := s.FrameAt(t.Context(), p, 10*time.Second); !errors.Is(err, video.ErrCorrupt) {
		t.Errorf("past the end: %v, want ErrCorrupt", err)
	}
	if _, err := s.FrameAt(t.Context(), filepath.Join(dir, "..", "x.mp4"), 0); err == nil {
		t.Error("a path outside the collection opened")
	}
}
