package setup

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
)

// Package is one npm package version and the files taken from it.
type Package struct {
	Name    string // npm package name, e.g. "onnxruntime-node"
	Version string // exact version, e.g. "1.30.0"
	Files   []File
}

// File is one file taken from a Package's tarball.
type File struct {
	// Path is the entry's name inside the tarball, e.g. "package/model/fr_detect.onnx".
	Path string
	// SHA256 is the lowercase hex digest the file must have.
	SHA256 string
	// Dest is where the file is written, relative to the destination directory.
	Dest string
}

// MaxFileSize is the largest file Fetch extracts from a tarball.
const MaxFileSize = 512 << 20

// Fetch installs p's files under destDir. It runs `npm pack NAME@VERSION` in
// a temporary directory (with npm_config_cache pointing to a temporary cache
// unless the caller's environment sets one; the rest of the user's npm
// configuration applies), extracts only the listed files from the tarball,
// checks every sha256 and only then writes each file to destDir/Dest
// atomically (temporary file in the same directory, fsync, rename). When a
// file fails its check nothing is written. Fetch is idempotent: when every
// Dest already exists with the right digest it returns without running npm.
// logf may be nil.
func Fetch(ctx context.Context, p Package, destDir string, logf func(format string, args ...any)) error {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	id := p.Name + "@" + p.Version
	if p.Name == "" || p.Version == "" {
		return fmt.Errorf("fetch %s: package name and version are required", id)
	}
	if len(p.Files) == 0 {
		return fmt.Errorf("fetch %s: no files listed (unsupported platform?)", id)
	}
	want := make(map[string]File, len(p.Files))
	dests := make(map[string]bool, len(p.Files))
	for _, f := range p.Files {
		if err := checkRel(f.Path); err != nil {
			return fmt.Errorf("fetch %s: tarball path: %w", id, err)
		}
		if path.Clean(f.Path) != f.Path {
			return fmt.Errorf("fetch %s: tarball path %q is not clean (want %q)", id, f.Path, path.Clean(f.Path))
		}
		if err := checkRel(f.Dest); err != nil {
			return fmt.Errorf("fetch %s: destination: %w", id, err)
		}
		if len(f.SHA256) != sha256.Size*2 {
			return fmt.Errorf("fetch %s: %s: sha256 %q is not a hex sha256 digest", id, f.Path, f.SHA256)
		}
		if _, dup := want[f.Path]; dup {
			return fmt.Errorf("fetch %s: %s listed twice", id, f.Path)
		}
		if dests[path.Clean(f.Dest)] {
			return fmt.Errorf("fetch %s: destination %s listed twice", id, f.Dest)
		}
		want[f.Path] = f
		dests[path.Clean(f.Dest)] = true
	}

	if installed(p.Files, destDir) {
		logf("%s: already installed in %s", id, destDir)
		return nil
	}

	tmp, err := os.MkdirTemp("", "gabarit-npm-")
	if err != nil {
		return fmt.Errorf("fetch %s: %w", id, err)
	}
	defer os.RemoveAll(tmp)

	logf("%s: npm pack", id)
	tgz, err := npmPack(ctx, id, tmp)
	if err != nil {
		return fmt.Errorf("fetch %s: %w", id, err)
	}
	if err := extract(ctx, id, tgz, want, destDir, logf); err != nil {
		return fmt.Errorf("fetch %s: %w", id, err)
	}
	return nil
}

// checkRel refuses empty, absolute and parent-escaping slash-separated paths.
func checkRel(p string) error {
	if p == "" {
		return errors.New("empty path")
	}
	if strings.HasPrefix(p, "/") || filepath.IsAbs(p) || strings.Contains(p, `\`) {
		return fmt.Errorf("%q is not a relative slash-separated path", p)
	}
	for _, el := range strings.Split(p, "/") {
		if el == ".." {
			return fmt.Errorf("%q leaves its directory", p)
		}
	}
	if path.Clean(p) == "." {
		return fmt.Errorf("%q names no file", p)
	}
	return nil
}

// installed reports whether every file already exists under destDir with its digest.
func installed(files []File, destDir string) bool {
	for _, f := range files {
		got, err := FileSHA256(filepath.Join(destDir, filepath.FromSlash(f.Dest)))
		if err != nil || !strings.EqualFold(got, f.SHA256) {
			return false
		}
	}
	return true
}

// FileSHA256 returns the lowercase hex sha256 of the named file.
func FileSHA256(name string) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// npmPack runs `npm pack --silent id` in dir and returns the tarball's path.
func npmPack(ctx context.Context, id, dir string) (string, error) {
	cmd := exec.CommandContext(ctx, "npm", "pack", "--silent", id)
	cmd.Dir = dir
	cmd.Env = os.Environ()
	if os.Getenv("npm_config_cache") == "" && os.Getenv("NPM_CONFIG_CACHE") == "" {
		cmd.Env = append(cmd.Env, "npm_config_cache="+filepath.Join(dir, "npm-cache"))
	}
	cmd.Env = append(cmd.Env, "npm_config_update_notifier=false", "npm_config_fund=false", "npm_config_audit=false")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 2000 {
			msg = msg[len(msg)-2000:]
		}
		if msg != "" {
			return "", fmt.Errorf("npm pack: %w: %s", err, msg)
		}
		return "", fmt.Errorf("npm pack: %w", err)
	}
	// npm prints the tarball's file name; fall back to the only .tgz in dir.
	lines := strings.Fields(stdout.String())
	if n := len(lines); n > 0 && strings.HasSuffix(lines[n-1], ".tgz") {
		name := filepath.Join(dir, filepath.Base(lines[n-1]))
		if _, err := os.Stat(name); err == nil {
			return name, nil
		}
	}
	m, _ := filepath.Glob(filepath.Join(dir, "*.tgz"))
	if len(m) != 1 {
		return "", fmt.Errorf("npm pack: found %d tarballs, want 1 (stdout %q)", len(m), strings.TrimSpace(stdout.String()))
	}
	return m[0], nil
}

// staged is a verified file waiting in a temporary file next to its destination.
type staged struct {
	tmp, dest string
}

// extract writes the wanted files of the tarball tgz under destDir.
func extract(ctx context.Context, id, tgz string, want map[string]File, destDir string, logf func(string, ...any)) (err error) {
	f, err := os.Open(tgz)
	if err != nil {
		return err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("%s: %w", filepath.Base(tgz), err)
	}
	defer zr.Close()

	var done []staged
	defer func() {
		if err != nil {
			for _, s := range done {
				os.Remove(s.tmp)
			}
		}
	}()
	seen := make(map[string]bool, len(want))
	tr := tar.NewReader(zr)
	for len(seen) < len(want) {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if errors.Is(err, tar.ErrInsecurePath) && hdr != nil {
			logf("%s: ignoring unsafe tarball entry %q", id, hdr.Name)
			continue
		}
		if err != nil {
			return fmt.Errorf("%s: %w", filepath.Base(tgz), err)
		}
		name := strings.TrimPrefix(hdr.Name, "./")
		if checkRel(name) != nil {
			logf("%s: ignoring unsafe tarball entry %q", id, hdr.Name)
			continue
		}
		wf, ok := want[path.Clean(name)]
		if !ok || seen[wf.Path] {
			continue
		}
		if hdr.Typeflag != tar.TypeReg {
			return fmt.Errorf("%s: not a regular file in the tarball", wf.Path)
		}
		if hdr.Size > MaxFileSize {
			return fmt.Errorf("%s: %d bytes, more than the %d allowed", wf.Path, hdr.Size, MaxFileSize)
		}
		s, err := stage(tr, wf, destDir)
		if err != nil {
			return err
		}
		done = append(done, s)
		seen[wf.Path] = true
	}
	for p := range want {
		if !seen[p] {
			return fmt.Errorf("%s: not in the tarball", p)
		}
	}
	for _, s := range done {
		if err := os.Rename(s.tmp, s.dest); err != nil {
			return err
		}
		syncDir(filepath.Dir(s.dest))
		logf("%s: wrote %s", id, s.dest)
	}
	return nil
}

// stage copies r into a temporary file beside f's destination, checking size and digest.
func stage(r io.Reader, f File, destDir string) (staged, error) {
	dest := filepath.Join(destDir, filepath.FromSlash(f.Dest))
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return staged{}, err
	}
	tf, err := os.CreateTemp(filepath.Dir(dest), "."+filepath.Base(dest)+".tmp-")
	if err != nil {
		return staged{}, err
	}
	fail := func(err error) (staged, error) {
		tf.Close()
		os.Remove(tf.Name())
		return staged{}, err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tf, h), io.LimitReader(r, MaxFileSize+1))
	if err != nil {
		return fail(fmt.Errorf("%s: %w", f.Path, err))
	}
	if n > MaxFileSize {
		return fail(fmt.Errorf("%s: more than the %d bytes allowed", f.Path, MaxFileSize))
	}
	if got := hex.EncodeToString(h.Sum(nil)); !strings.EqualFold(got, f.SHA256) {
		return fail(fmt.Errorf("%s: sha256 %s, want %s", f.Path, got, strings.ToLower(f.SHA256)))
	}
	if err := tf.Chmod(0o644); err != nil {
		return fail(err)
	}
	if err := tf.Sync(); err != nil {
		return fail(err)
	}
	if err := tf.Close(); err != nil {
		os.Remove(tf.Name())
		return staged{}, err
	}
	return staged{tmp: tf.Name(), dest: dest}, nil
}

// syncDir flushes a directory entry after a rename; errors are ignored
// because some file systems do not support it.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
