package video

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"gabarit/internal/imageproc"
	"gabarit/internal/source"
)

// Info describes the first video stream of a file, as ffprobe reports it.
type Info struct {
	// Width and Height are the display size in pixels: the coded size with
	// the pixel aspect ratio and a quarter-turn rotation applied, as ffmpeg
	// shows the frames before Frames scales them down.
	Width, Height int
	// Duration is the container's duration (0 when it does not say).
	Duration time.Duration
	// FPS is the stream's average frame rate (0 when unknown).
	FPS float64
	// Rotation is the display rotation recorded in the file, in degrees in
	// [0, 360) as ffprobe reports it; ffmpeg applies it to the frames.
	Rotation int
}

// Frame is one frame sampled from a video.
type Frame struct {
	// Index is the 0-based number of the frame among the sampled ones.
	Index int
	// Time is the time code, Index × the sampling interval from the start of
	// the video; see Frames.
	Time time.Duration
	// Image is the frame, at most Options.MaxSide pixels on its long side.
	// It is newly allocated for each frame and belongs to the callback.
	Image *imageproc.RGB
}

// probeTimeout bounds one ffprobe run.
const probeTimeout = 2 * time.Minute

// waitDelay bounds how long Wait waits for a killed tool's pipes to close.
const waitDelay = 5 * time.Second

// input is how the tools are told to read the file handed to them as fd 3:
// they open /dev/fd/3 themselves (a fresh, seekable open of the same file on
// Linux) and never see the path.
const input = "file:/dev/fd/3"

// Probe returns what ffprobe reports about the first video stream of the
// video at path, which must be a file of the collection (a Video.Path). It
// fails with an *source.ItemError naming the locator, wrapping ErrCorrupt when
// ffprobe cannot read the file or it has no video stream, source.ErrTooLarge
// when the file, its duration or its dimensions are over the limits, and
// source.ErrEscape when path lies outside the collection.
func (s *Source) Probe(ctx context.Context, path string) (Info, error) {
	f, loc, format, err := s.open(path)
	if err != nil {
		return Info{}, err
	}
	defer f.Close()
	info, err := s.probe(ctx, f, format)
	if err != nil {
		return Info{}, &source.ItemError{Locator: loc, Err: err}
	}
	return info, nil
}

// probeOutput is the part of ffprobe's JSON that Probe reads.
type probeOutput struct {
	Streams []struct {
		Width             int    `json:"width"`
		Height            int    `json:"height"`
		AvgFrameRate      string `json:"avg_frame_rate"`
		SampleAspectRatio string `json:"sample_aspect_ratio"`
		SideDataList      []struct {
			Rotation float64 `json:"rotation"`
		} `json:"side_data_list"`
	} `json:"streams"`
	Format struct {
		Duration string `json:"duration"`
	} `json:"format"`
}

// probe runs ffprobe on f and checks the result against the limits.
func (s *Source) probe(ctx context.Context, f *os.File, format string) (Info, error) {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.ffprobe,
		"-v", "error",
		"-protocol_whitelist", "file",
		"-f", format,
		"-select_streams", "V:0", // the first video stream that is not cover art
		"-show_entries", "stream=width,height,avg_frame_rate,sample_aspect_ratio:stream_side_data=rotation:format=duration",
		"-of", "json",
		input)
	cmd.ExtraFiles = []*os.File{f}
	cmd.WaitDelay = waitDelay
	stdout := &capWriter{max: 1 << 20}
	stderr := &tailWriter{max: 4 << 10}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return Info{}, fmt.Errorf("ffprobe: %w", context.Cause(ctx))
		}
		return Info{}, fmt.Errorf("ffprobe: %w: %v%s", ErrCorrupt, err, stderr.lines())
	}
	if stdout.over {
		return Info{}, fmt.Errorf("ffprobe: output over %d bytes: %w", stdout.max, ErrCorrupt)
	}
	var out probeOutput
	if err := json.Unmarshal(stdout.buf.Bytes(), &out); err != nil {
		return Info{}, fmt.Errorf("ffprobe: decode output: %w (%w)", ErrCorrupt, err)
	}
	if len(out.Streams) == 0 || out.Streams[0].Width <= 0 || out.Streams[0].Height <= 0 {
		return Info{}, fmt.Errorf("no video stream: %w%s", ErrCorrupt, stderr.lines())
	}
	st := out.Streams[0]
	if st.Width > MaxDim || st.Height > MaxDim {
		return Info{}, fmt.Errorf("%d×%d pixels, limit %d on either side: %w", st.Width, st.Height, MaxDim, source.ErrTooLarge)
	}
	info := Info{FPS: parseRatio(st.AvgFrameRate)}
	if d, err := strconv.ParseFloat(out.Format.Duration, 64); err == nil && d > 0 && !math.IsInf(d, 0) {
		// Compare in seconds first: a huge duration would overflow time.Duration.
		if d > s.opts.MaxDuration.Seconds() {
			return Info{}, fmt.Errorf("duration %.0f s, limit %v: %w", d, s.opts.MaxDuration, source.ErrTooLarge)
		}
		info.Duration = time.Duration(d * float64(time.Second))
	}
	for _, sd := range st.SideDataList {
		if sd.Rotation != 0 && !math.IsNaN(sd.Rotation) && !math.IsInf(sd.Rotation, 0) {
			info.Rotation = int(math.Mod(math.Mod(math.Round(sd.Rotation), 360)+360, 360))
			break
		}
	}
	// Display size: the pixel aspect ratio stretches the width, a quarter
	// turn swaps the sides (ffmpeg's autorotation does the same).
	w, h := float64(st.Width), float64(st.Height)
	if sar := parseRatio(st.SampleAspectRatio); sar > 0 {
		w *= sar
	}
	if info.Rotation == 90 || info.Rotation == 270 {
		w, h = h, w
	}
	if w > MaxDim || h > MaxDim {
		return Info{}, fmt.Errorf("display size %.0f×%.0f pixels, limit %d on either side: %w", w, h, MaxDim, source.ErrTooLarge)
	}
	info.Width, info.Height = max(1, int(math.Round(w))), max(1, int(math.Round(h)))
	return info, nil
}

// parseRatio parses ffprobe's "num/den" or "num:den" (0 when absent or invalid).
func parseRatio(s string) float64 {
	num, den, ok := strings.Cut(s, "/")
	if !ok {
		num, den, ok = strings.Cut(s, ":")
	}
	if !ok {
		return 0
	}
	n, err1 := strconv.ParseFloat(num, 64)
	d, err2 := strconv.ParseFloat(den, 64)
	if err1 != nil || err2 != nil || n <= 0 || d <= 0 || math.IsInf(n/d, 0) {
		return 0
	}
	return n / d
}

// outSize returns the size of the sampled frames: the display size scaled
// down to at most maxSide on the long side, keeping the aspect ratio.
func outSize(info Info, maxSide int) (w, h int) {
	fw, fh := float64(info.Width), float64(info.Height)
	if m := max(fw, fh); m > float64(maxSide) {
		k := float64(maxSide) / m
		fw, fh = fw*k, fh*k
	}
	return max(1, int(math.Round(fw))), max(1, int(math.Round(fh)))
}

// rate returns the frame rate 1/every as an exact ratio for the fps filter.
func rate(every time.Duration) string {
	num, den := int64(time.Second), int64(every)
	a, b := num, den
	for b != 0 {
		a, b = b, a%b
	}
	return fmt.Sprintf("%d/%d", num/a, den/a)
}

// Frames samples one frame every interval (DefaultEvery when every is 0)
// from the video at path, which must be a file of the collection (a
// Video.Path), and calls fn with each in order. Frames are decoded by ffmpeg,
// rotated as the file says, scaled to at most Options.MaxSide pixels on the
// long side keeping the display aspect ratio, and read as RGB from a pipe.
//
// Time codes are Index × every. ffmpeg's fps filter emits, for each instant
// k × every from the start of the video, the decoded frame shown at that
// instant (the nearest one at the edges), so a time code is exact to within
// one frame of the source video.
//
// Frames probes the video first and refuses it, before decoding, when it is
// over the limits (source.ErrTooLarge) or unreadable (ErrCorrupt); a video
// whose duration the container does not state stops with source.ErrTooLarge
// once a time code passes Options.MaxDuration. It returns the first error fn
// returns and ctx.Err() on cancellation, killing ffmpeg in both cases, and
// always waits for ffmpeg to exit. An ffmpeg that gives no frame for
// Options.StallTimeout is killed too (an *source.ItemError wrapping
// ErrStalled). A video that ffmpeg fails on, or that
// ends with errors well before its stated duration (truncated), gives an
// *source.ItemError naming the locator and wrapping ErrCorrupt, with the last
// lines ffmpeg wrote; frames decoded before the failure have been passed to
// fn by then.
func (s *Source) Frames(ctx context.Context, path string, every time.Duration, fn func(f Frame) error) error {
	if every == 0 {
		every = DefaultEvery
	}
	if every < MinEvery {
		return fmt.Errorf("sample video frames: interval %v shorter than %v", every, MinEvery)
	}
	f, loc, format, err := s.open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := s.probe(ctx, f, format)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &source.ItemError{Locator: loc, Err: err}
	}
	err = s.frames(ctx, f, format, info, every, fn)
	var fe *fnError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &fe):
		return fe.err // the callback's own error, as it returned it
	case ctx.Err() != nil:
		return ctx.Err()
	}
	return &source.ItemError{Locator: loc, Err: err}
}

// fnError marks an error returned by the Frames callback.
type fnError struct{ err error }

func (e *fnError) Error() string { return e.err.Error() }

// frames runs ffmpeg on f and hands its frames to fn.
func (s *Source) frames(ctx context.Context, f *os.File, format string, info Info, every time.Duration, fn func(Frame) error) error {
	w, h := outSize(info, min(s.opts.MaxSide, MaxDim))
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	cmd := exec.CommandContext(ctx, s.ffmpeg,
		"-nostdin",
		"-v", "error",
		"-protocol_whitelist", "file",
		"-f", format,
		"-i", input,
		"-map", "0:V:0", // the first video stream that is not cover art
		"-vf", fmt.Sprintf("fps=%s,scale=%d:%d", rate(every), w, h),
		"-f", "rawvideo",
		"-pix_fmt", "rgb24",
		"pipe:1")
	cmd.ExtraFiles = []*os.File{f}
	cmd.WaitDelay = waitDelay
	stderr := &tailWriter{max: 8 << 10}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("ffmpeg: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start ffmpeg: %w", err)
	}
	// The watchdog kills ffmpeg when no frame comes for StallTimeout (the
	// callback's own time not counted).
	stalled := fmt.Errorf("no frame from ffmpeg for %v: %w", s.opts.StallTimeout, ErrStalled)
	stall := time.AfterFunc(s.opts.StallTimeout, func() { cancel(stalled) })
	defer stall.Stop()
	// From here on ffmpeg is always waited for; stopping early kills it.
	var stop error // why we stopped reading before the end, if we did
	n := 0
	for ; ; n++ {
		img := imageproc.NewRGB(w, h)
		_, rerr := io.ReadFull(stdout, img.Pix)
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			if !errors.Is(rerr, io.ErrUnexpectedEOF) {
				stop = fmt.Errorf("read ffmpeg output: %w", rerr)
			}
			// A partial frame: ffmpeg died mid-frame; Wait says why.
			break
		}
		t := time.Duration(n) * every
		if t > s.opts.MaxDuration {
			stop = fmt.Errorf("longer than %v: %w", s.opts.MaxDuration, source.ErrTooLarge)
			break
		}
		if !stall.Stop() {
			stop = stalled // the watchdog fired (it may not have cancelled yet)
			break
		}
		if ctx.Err() != nil {
			stop = context.Cause(ctx)
			break
		}
		if ferr := fn(Frame{Index: n, Time: t, Image: img}); ferr != nil {
			stop = &fnError{ferr}
			break
		}
		stall.Reset(s.opts.StallTimeout)
	}
	if stop != nil {
		cancel(stop) // kills ffmpeg
	}
	werr := cmd.Wait()
	switch {
	case stop != nil:
		return stop
	case ctx.Err() != nil:
		return context.Cause(ctx) // the caller's cancellation or the watchdog
	case werr != nil:
		return fmt.Errorf("ffmpeg: %w: %v%s", ErrCorrupt, werr, stderr.lines())
	}
	// ffmpeg exits 0 on a truncated file, having decoded what it could and
	// logged errors; benign decoding errors also get logged. Call the video
	// truncated when errors were logged and the frames stop well before the
	// stated duration.
	covered := time.Duration(n) * every
	if stderr.n > 0 && info.Duration > 0 && covered+2*every+time.Second < info.Duration {
		return fmt.Errorf("ffmpeg: %w: decoded %v of %v%s", ErrCorrupt, covered, info.Duration, stderr.lines())
	}
	return nil
}

// capWriter keeps up to max bytes and notes whether more came.
type capWriter struct {
	buf  bytes.Buffer
	max  int
	over bool
}

func (w *capWriter) Write(p []byte) (int, error) {
	if room := w.max - w.buf.Len(); len(p) > room {
		w.over = true
		w.buf.Write(p[:max(room, 0)])
		return len(p), nil
	}
	return w.buf.Write(p)
}

// tailWriter keeps the last max bytes written to it.
type tailWriter struct {
	buf []byte
	max int
	n   int64 // bytes written in all
}

func (w *tailWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	w.buf = append(w.buf, p...)
	if len(w.buf) > w.max {
		w.buf = append(w.buf[:0], w.buf[len(w.buf)-w.max:]...)
	}
	return len(p), nil
}

// Bounds on the tool output quoted in errors.
const (
	tailLines   = 8
	tailLineLen = 200
)

// lines returns the last lines written, for an error message: ": " then the
// lines joined by " | ", or "" when nothing was written.
func (w *tailWriter) lines() string {
	all := strings.Split(strings.TrimSpace(strings.ToValidUTF8(string(w.buf), "?")), "\n")
	if len(all) > tailLines {
		all = all[len(all)-tailLines:]
	}
	var out []string
	for _, l := range all {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		if len(l) > tailLineLen {
			l = strings.ToValidUTF8(l[:tailLineLen], "") + "…"
		}
		out = append(out, l)
	}
	if len(out) == 0 {
		return ""
	}
	return ": " + strings.Join(out, " | ")
}

// FrameAt returns the frame shown at time code at in the video at path,
// which must be a file of the collection (a Video.Path): decoded, rotated and
// scaled as Frames does, so that a box found in a sampled frame applies to
// it. ffmpeg seeks to at (accurately: to the first frame at or after it),
// so the frame is within one frame of the one Frames gave at that time
// code. Errors are those of Frames; a time code past the end of the video
// wraps ErrCorrupt (no frame).
func (s *Source) FrameAt(ctx context.Context, path string, at time.Duration) (*imageproc.RGB, error) {
	if at < 0 {
		return nil, fmt.Errorf("video frame: negative time code %v", at)
	}
	f, loc, format, err := s.open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := s.probe(ctx, f, format)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &source.ItemError{Locator: loc, Err: err}
	}
	w, h := outSize(info, min(s.opts.MaxSide, MaxDim))
	tctx, cancel := context.WithTimeout(ctx, s.opts.StallTimeout)
	defer cancel()
	cmd := exec.CommandContext(tctx, s.ffmpeg,
		"-nostdin",
		"-v", "error",
		"-protocol_whitelist", "file",
		"-ss", strconv.FormatFloat(at.Seconds(), 'f', 3, 64),
		"-f", format,
		"-i", input,
		"-map", "0:V:0",
		"-frames:v", "1",
		"-vf", fmt.Sprintf("scale=%d:%d", w, h),
		"-f", "rawvideo",
		"-pix_fmt", "rgb24",
		"pipe:1")
	cmd.ExtraFiles = []*os.File{f}
	cmd.WaitDelay = waitDelay
	stderr := &tailWriter{max: 8 << 10}
	cmd.Stderr = stderr
	out := &capWriter{max: w * h * 3}
	cmd.Stdout = out
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if tctx.Err() != nil {
			return nil, &source.ItemError{Locator: loc, Err: fmt.Errorf("ffmpeg gave no frame in %v: %w", s.opts.StallTimeout, ErrStalled)}
		}
		return nil, &source.ItemError{Locator: loc, Err: fmt.Errorf("ffmpeg: %w: %v%s", ErrCorrupt, err, stderr.lines())}
	}
	if out.buf.Len() != w*h*3 {
		return nil, &source.ItemError{Locator: loc, Err: fmt.Errorf("no frame at %v: %w%s", at, ErrCorrupt, stderr.lines())}
	}
	return &imageproc.RGB{W: w, H: h, Pix: out.buf.Bytes()}, nil
}
