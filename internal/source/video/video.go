// Package video reads a declared collection of video files, a single file or
// a directory tree of them, and samples frames from each with ffmpeg.
//
// Video files are recognised by their extension (.mp4 .mov .m4v .mkv .webm
// .avi, any case; hidden files and directories are skipped) and confirmed by
// ffprobe: a file that ffprobe cannot read, that holds no video stream, or
// that is over the Options limits is reported to Walk's callback as a
// *source.ItemError instead of being listed.
//
// A directory is walked with the rules of source/folder: lexical order of
// locators, symlinks whose target lies outside the root refused with an
// ItemError wrapping source.ErrEscape, symlinks to files inside the root
// listed under their own locator, symlinked directories never followed.
//
// Probe and Frames open the file through an os.Root on the collection root,
// so the file read lies inside the root even if a path component was swapped
// for a symlink after listing, and hand the open descriptor to ffprobe and
// ffmpeg (as /dev/fd/3): the tools never resolve the path themselves. The
// container format is forced from the extension (mov for .mp4 .mov .m4v,
// matroska for .mkv .webm, avi for .avi) and only the file protocol is
// allowed, so that a file named .mp4 that really is a playlist cannot make
// ffmpeg open other files or URLs.
//
// ffmpeg and ffprobe are the Debian programs (apt-get install ffmpeg), found
// on $PATH when the source is created.
package video

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"gabarit/internal/source"
	"gabarit/internal/source/folder"
)

// Default limits and sampling, used for zero or negative fields of Options
// and for a zero interval passed to Frames.
const (
	DefaultMaxSide     = 1600                   // pixels, long side of a sampled frame
	DefaultMaxDuration = 4 * time.Hour          // longest video accepted
	DefaultMaxBytes    = 8 << 30                // 8 GiB, largest video file accepted
	DefaultEvery       = 500 * time.Millisecond // interval between sampled frames
	DefaultStall       = 5 * time.Minute        // longest wait for ffmpeg's next frame
)

// MaxDim is the largest width or height, in pixels, of a video accepted
// (before scaling); larger ones are refused as absurd.
const MaxDim = 16384

// MinEvery is the shortest sampling interval Frames accepts.
const MinEvery = 10 * time.Millisecond

var (
	// ErrNoFFmpeg reports that ffmpeg or ffprobe is not installed.
	ErrNoFFmpeg = errors.New("ffmpeg not found: install Debian's ffmpeg package (apt-get install ffmpeg)")
	// ErrCorrupt reports a video that ffprobe or ffmpeg cannot read completely:
	// corrupt, truncated, not a video, or in a format this build cannot decode.
	ErrCorrupt = errors.New("corrupt or truncated video")
	// ErrStalled reports an ffmpeg that produced no frame for
	// Options.StallTimeout; it was killed.
	ErrStalled = errors.New("ffmpeg stalled")
)

// Options configures a video source. Zero fields take the defaults.
type Options struct {
	MaxSide     int           // long side of a sampled frame in pixels, larger frames are scaled down (default 1600)
	MaxDuration time.Duration // longest video accepted (default 4 h)
	MaxBytes    int64         // largest video file accepted, bytes (default 8 GiB)
	MaxEntries  int           // most video files listed per source (default source.DefaultMaxEntries)
	// StallTimeout is how long Frames waits for ffmpeg's next frame (the
	// callback's time not counted) before killing it (default 5 min).
	StallTimeout time.Duration
}

// WithDefaults returns o with zero or negative fields set to the defaults.
func (o Options) WithDefaults() Options {
	if o.MaxSide <= 0 {
		o.MaxSide = DefaultMaxSide
	}
	if o.MaxDuration <= 0 {
		o.MaxDuration = DefaultMaxDuration
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.MaxEntries <= 0 {
		o.MaxEntries = source.DefaultMaxEntries
	}
	if o.StallTimeout <= 0 {
		o.StallTimeout = DefaultStall
	}
	return o
}

// Video is one video file of a collection.
type Video struct {
	// Locator is the path of the file inside the source, slash-separated and
	// relative to the root; for a source made of a single file, its base name.
	Locator string
	// Size is the size of the file in bytes when it was listed.
	Size int64
	// ModTime is the file's modification time when it was listed.
	ModTime time.Time
	// Path is the absolute path of the file (root symlinks resolved), to pass
	// to Probe and Frames.
	Path string
	// Info is what ffprobe reported when the file was listed.
	Info Info
}

// Source is a video file or a directory tree of videos declared as a
// collection. It holds no open file and is safe for concurrent use.
type Source struct {
	root    string // absolute directory, symlinks resolved
	single  string // base name of the one file when root names a file, else ""
	opts    Options
	ffmpeg  string // absolute paths of the tools
	ffprobe string
}

// New returns the collection at root: a video file, or a directory whose
// videos are listed recursively. The root is made absolute and symlinks in it
// are resolved. New fails with an error wrapping ErrNoFFmpeg when ffmpeg or
// ffprobe is not on $PATH.
func New(root string, opts Options) (*Source, error) {
	ffmpeg, err := lookPath("ffmpeg")
	if err != nil {
		return nil, fmt.Errorf("open video source %s: %w", root, err)
	}
	ffprobe, err := lookPath("ffprobe")
	if err != nil {
		return nil, fmt.Errorf("open video source %s: %w", root, err)
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("open video source %s: %w", root, err)
	}
	abs, err = filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, fmt.Errorf("open video source %s: %w", root, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("open video source %s: %w", root, err)
	}
	s := &Source{root: abs, opts: opts.WithDefaults(), ffmpeg: ffmpeg, ffprobe: ffprobe}
	switch {
	case fi.IsDir():
	case fi.Mode().IsRegular():
		if !IsVideoName(abs) {
			return nil, fmt.Errorf("open video source %s: not a video file name (want %s)", root, strings.Join(videoExts(), " "))
		}
		s.root, s.single = filepath.Dir(abs), filepath.Base(abs)
	default:
		return nil, fmt.Errorf("open video source %s: not a regular file or directory (%s)", root, fi.Mode().Type())
	}
	return s, nil
}

func lookPath(name string) (string, error) {
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%w (%w)", ErrNoFFmpeg, err)
	}
	p, err = filepath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("%w (%w)", ErrNoFFmpeg, err)
	}
	return p, nil
}

// formats maps a lower-case extension to the ffmpeg demuxer forced for it.
var formats = map[string]string{
	".mp4":  "mov",
	".mov":  "mov",
	".m4v":  "mov",
	".mkv":  "matroska",
	".webm": "matroska",
	".avi":  "avi",
}

func videoExts() []string {
	exts := make([]string, 0, len(formats))
	for e := range formats {
		exts = append(exts, e)
	}
	slices.Sort(exts)
	return exts
}

// IsVideoName reports whether name has a video extension and is not hidden.
func IsVideoName(name string) bool {
	base := filepath.Base(name)
	_, ok := formats[strings.ToLower(filepath.Ext(base))]
	return ok && !strings.HasPrefix(base, ".")
}

// Root returns the absolute directory of the collection, with symlinks
// resolved (for a single-file source, the file's directory).
func (s *Source) Root() string { return s.root }

// Walk calls fn for every video file of the collection, in lexical order of
// locators, after probing it with ffprobe; see the package documentation.
// Files that cannot be listed or probed, or that are over the limits
// (errors wrapping source.ErrTooLarge), are reported to fn as
// *source.ItemError with a zero Video apart from its Locator, and the walk
// goes on. Walk stops at the first error fn returns, which it returns, and at
// ctx cancellation, when it returns ctx.Err(). More than Options.MaxEntries
// listed files stops the walk with an error wrapping source.ErrTooLarge.
func (s *Source) Walk(ctx context.Context, fn func(v Video, err error) error) error {
	w := walker{s: s, fn: fn}
	if s.single != "" {
		if err := ctx.Err(); err != nil {
			return err
		}
		fi, err := os.Lstat(filepath.Join(s.root, s.single))
		if err != nil {
			return fn(Video{Locator: s.single}, &source.ItemError{Locator: s.single, Err: err})
		}
		if !fi.Mode().IsRegular() {
			// The root was resolved by New; it has been replaced since.
			return fn(Video{Locator: s.single}, &source.ItemError{Locator: s.single, Err: fmt.Errorf("not a regular file (%s)", fi.Mode().Type())})
		}
		return w.file(ctx, s.single, fi)
	}
	return folder.Tree(ctx, s.root, IsVideoName,
		func(loc, _ string, fi fs.FileInfo) error { return w.file(ctx, loc, fi) }, w.fail)
}

type walker struct {
	s     *Source
	fn    func(Video, error) error
	count int
}

func (w *walker) fail(loc string, err error) error {
	return w.fn(Video{Locator: loc}, &source.ItemError{Locator: loc, Err: err})
}

// file probes and lists the regular video file at loc, described by fi.
func (w *walker) file(ctx context.Context, loc string, fi fs.FileInfo) error {
	if fi.Size() > w.s.opts.MaxBytes {
		return w.fail(loc, fmt.Errorf("%d bytes, limit %d: %w", fi.Size(), w.s.opts.MaxBytes, source.ErrTooLarge))
	}
	w.count++
	if w.count > w.s.opts.MaxEntries {
		return fmt.Errorf("walk video source: more than %d files: %w", w.s.opts.MaxEntries, source.ErrTooLarge)
	}
	p := filepath.Join(w.s.root, filepath.FromSlash(loc))
	info, err := w.s.Probe(ctx, p)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var ie *source.ItemError
		if errors.As(err, &ie) {
			err = ie.Err // Probe names the locator already; do not nest
		}
		return w.fail(loc, err)
	}
	return w.fn(Video{Locator: loc, Size: fi.Size(), ModTime: fi.ModTime(), Path: p, Info: info}, nil)
}

// inside reports whether the absolute, resolved path p lies in the root.
func (s *Source) inside(p string) bool {
	rel, err := filepath.Rel(s.root, p)
	return err == nil && filepath.IsLocal(rel)
}

// locate returns the locator of the file at path p, which must be a file of
// the collection (for a single-file source, that file).
func (s *Source) locate(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	rel, err := filepath.Rel(s.root, abs)
	if err != nil || !filepath.IsLocal(rel) {
		return "", fmt.Errorf("%s is not in the source: %w", p, source.ErrEscape)
	}
	loc := filepath.ToSlash(rel)
	if s.single != "" && loc != s.single {
		return "", fmt.Errorf("%s is not in the source: %w", p, source.ErrEscape)
	}
	return loc, nil
}

// open opens the video at path p beneath the root and checks it against the
// limits. It returns the file, its locator and the demuxer to force.
func (s *Source) open(p string) (*os.File, string, string, error) {
	loc, err := s.locate(p)
	if err != nil {
		return nil, filepath.Base(p), "", &source.ItemError{Locator: filepath.Base(p), Err: err}
	}
	format, ok := formats[strings.ToLower(path.Ext(loc))]
	if !ok || !IsVideoName(loc) {
		return nil, loc, "", &source.ItemError{Locator: loc, Err: fmt.Errorf("not a video file name (want %s)", strings.Join(videoExts(), " "))}
	}
	// Resolve symlinks first, so that an absolute symlink to a file inside
	// the root (which os.Root refuses to follow) opens its target; the open
	// itself still goes through os.Root, so a path swapped after this check
	// cannot lead outside.
	target, err := filepath.EvalSymlinks(filepath.Join(s.root, filepath.FromSlash(loc)))
	if err != nil {
		return nil, loc, "", &source.ItemError{Locator: loc, Err: err}
	}
	rel, err := filepath.Rel(s.root, target)
	if err != nil || !filepath.IsLocal(rel) {
		return nil, loc, "", &source.ItemError{Locator: loc, Err: fmt.Errorf("symlink target outside the root: %w", source.ErrEscape)}
	}
	root, err := os.OpenRoot(s.root)
	if err != nil {
		return nil, loc, "", &source.ItemError{Locator: loc, Err: err}
	}
	defer root.Close()
	// O_NONBLOCK: a file swapped for a FIFO must not block the open.
	f, err := root.OpenFile(rel, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			// os.Root refuses paths resolving outside the root; say so.
			if t, rerr := filepath.EvalSymlinks(target); rerr == nil && !s.inside(t) {
				err = fmt.Errorf("%w (%w)", source.ErrEscape, err)
			}
		}
		return nil, loc, "", &source.ItemError{Locator: loc, Err: err}
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, loc, "", &source.ItemError{Locator: loc, Err: err}
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, loc, "", &source.ItemError{Locator: loc, Err: fmt.Errorf("not a regular file (%s)", fi.Mode().Type())}
	}
	if fi.Size() > s.opts.MaxBytes {
		f.Close()
		return nil, loc, "", &source.ItemError{Locator: loc, Err: fmt.Errorf("%d bytes, limit %d: %w", fi.Size(), s.opts.MaxBytes, source.ErrTooLarge)}
	}
	return f, loc, format, nil
}
