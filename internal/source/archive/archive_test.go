package archive_test

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"errors"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gabarit/internal/source"
	"gabarit/internal/source/archive"
	"gabarit/internal/source/sourcetest"
)

// entry is one member of a test archive.
type entry struct {
	name string
	data []byte
	mode os.FileMode // 0: regular file
	link string      // link target for symlink/hardlink entries
}

// sorted returns files as entries sorted by name.
func sorted(files map[string][]byte) []entry {
	var es []entry
	for name, data := range files {
		es = append(es, entry{name: name, data: data})
	}
	slices.SortFunc(es, func(a, b entry) int { return strings.Compare(a.name, b.name) })
	return es
}

func zipBytes(t *testing.T, es []entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for i, e := range es {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate, Modified: time.Unix(1e9, 0)}
		if i%2 == 1 {
			h.Method = zip.Store // exercise both methods
		}
		if e.mode != 0 {
			h.SetMode(e.mode)
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		data := e.data
		if e.mode&os.ModeSymlink != 0 {
			data = []byte(e.link)
		}
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func tarBytes(t *testing.T, es []entry, gz bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.Writer = &buf
	var zw *gzip.Writer
	if gz {
		zw = gzip.NewWriter(&buf)
		w = zw
	}
	tw := tar.NewWriter(w)
	for _, e := range es {
		h := &tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.data)), ModTime: time.Unix(1e9, 0), Typeflag: tar.TypeReg}
		switch {
		case e.mode&os.ModeSymlink != 0:
			h.Typeflag, h.Linkname, h.Size = tar.TypeSymlink, e.link, 0
		case e.link != "":
			h.Typeflag, h.Linkname, h.Size = tar.TypeLink, e.link, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			if _, err := tw.Write(e.data); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// kinds builds an archive of each format from entries.
var kinds = []struct {
	name  string
	build func(t *testing.T, es []entry) []byte
}{
	{"zip", zipBytes},
	{"tar", func(t *testing.T, es []entry) []byte { return tarBytes(t, es, false) }},
	{"tar.gz", func(t *testing.T, es []entry) []byte { return tarBytes(t, es, true) }},
}

func openBytes(t *testing.T, data []byte, lim source.Limits) *archive.Source {
	t.Helper()
	p := filepath.Join(t.TempDir(), "collection.archive")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	src, err := archive.Open(p, lim)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return src
}

// result is what one Walk reported; items were read inside the callback.
type result struct {
	data  map[string][]byte
	errs  map[string]error // item errors, and read errors of listed items
	order []string
	err   error // Walk's own error
}

func walk(t *testing.T, src source.Source) result {
	t.Helper()
	r := result{data: map[string][]byte{}, errs: map[string]error{}}
	r.err = src.Walk(t.Context(), func(it source.Item, err error) error {
		r.order = append(r.order, it.Locator)
		if err != nil {
			var ie *source.ItemError
			if !errors.As(err, &ie) || ie.Locator != it.Locator {
				t.Errorf("item error %v is not an *ItemError naming %q", err, it.Locator)
			}
			r.errs[it.Locator] = err
			return nil
		}
		rc, err := it.Open()
		if err != nil {
			r.errs[it.Locator] = err
			return nil
		}
		defer rc.Close()
		data, err := io.ReadAll(rc)
		if err != nil {
			r.errs[it.Locator] = err
			return nil
		}
		r.data[it.Locator] = data
		return nil
	})
	return r
}

func TestConformance(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			sourcetest.Run(t, func(t *testing.T, files map[string][]byte) source.Source {
				return openBytes(t, k.build(t, sorted(files)), source.Limits{})
			})
		})
	}
}

func TestFormatDetection(t *testing.T) {
	t.Parallel()
	es := []entry{{name: "a.jpg", data: []byte{1}}}
	for _, k := range kinds {
		if got := openBytes(t, k.build(t, es), source.Limits{}).Format(); string(got) != k.name {
			t.Errorf("%s archive detected as %q", k.name, got)
		}
	}
	p := filepath.Join(t.TempDir(), "x.zip")
	if err := os.WriteFile(p, []byte("not an archive at all"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := archive.Open(p, source.Limits{}); err == nil {
		t.Errorf("Open of a text file succeeded")
	}
	if _, err := archive.Open(filepath.Join(t.TempDir(), "missing.zip"), source.Limits{}); err == nil {
		t.Errorf("Open of a missing file succeeded")
	}
}

func TestZipSlip(t *testing.T) {
	t.Parallel()
	evil := []string{"../evil.jpg", "/abs.jpg", "a/../../x.jpg", `..\win.jpg`, `a\..\..\w.jpg`, "C:/drive.jpg", "../evil.sh"}
	var es []entry
	for _, n := range evil {
		es = append(es, entry{name: n, data: []byte("payload")})
	}
	es = append(es, entry{name: "good.jpg", data: []byte{1, 2}})
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			r := walk(t, openBytes(t, k.build(t, es), source.Limits{}))
			if r.err != nil {
				t.Fatalf("Walk: %v", r.err)
			}
			for _, n := range evil {
				if !errors.Is(r.errs[n], source.ErrEscape) {
					t.Errorf("%q: error %v, want ErrEscape", n, r.errs[n])
				}
				if _, ok := r.data[n]; ok {
					t.Errorf("%q was read", n)
				}
			}
			if want := []string{"good.jpg"}; !slices.Equal(slices.Sorted(keys(r.data)), want) {
				t.Errorf("read %q, want %q", slices.Sorted(keys(r.data)), want)
			}
		})
	}
}

func keys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func TestLinksAndDuplicates(t *testing.T) {
	t.Parallel()
	es := []entry{
		{name: "a.jpg", data: []byte{1}},
		{name: "a.jpg", data: []byte{2}},
		{name: "./b/../c.jpg", data: []byte{3}}, // ".." element: refused
		{name: "sym.jpg", mode: os.ModeSymlink, link: "/etc/passwd"},
	}
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			r := walk(t, openBytes(t, k.build(t, es), source.Limits{}))
			if r.err != nil {
				t.Fatalf("Walk: %v", r.err)
			}
			if r.errs["sym.jpg"] == nil {
				t.Errorf("symlink entry not reported")
			}
			if r.errs["a.jpg"] == nil || len(r.data["a.jpg"]) != 1 {
				t.Errorf("duplicate a.jpg: error %v, %d bytes read; want one read and one error", r.errs["a.jpg"], len(r.data["a.jpg"]))
			}
			if !errors.Is(r.errs["./b/../c.jpg"], source.ErrEscape) {
				t.Errorf("./b/../c.jpg: %v, want ErrEscape", r.errs["./b/../c.jpg"])
			}
		})
	}
	t.Run("hardlink", func(t *testing.T) {
		r := walk(t, openBytes(t, tarBytes(t, []entry{{name: "a.jpg", data: []byte{1}}, {name: "h.jpg", link: "a.jpg"}}, false), source.Limits{}))
		if r.err != nil || r.errs["h.jpg"] == nil {
			t.Errorf("hardlink: Walk %v, item error %v; want nil and an item error", r.err, r.errs["h.jpg"])
		}
	})
}

// zeros is a reader of n zero bytes that allocates nothing per byte.
func zeros(n int64) io.Reader { return io.LimitReader(zeroReader{}, n) }

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// bombZip is a zip with one 100 MB entry of zeros (about 100 kB compressed).
func bombZip(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.CreateHeader(&zip.FileHeader{Name: "bomb.jpg", Method: zip.Deflate})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(w, zeros(100e6)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestZipBomb(t *testing.T) {
	t.Parallel()
	data := bombZip(t)
	t.Logf("100 MB of zeros: %d bytes compressed", len(data))
	for _, tc := range []struct {
		name string
		lim  source.Limits
	}{
		{"file size", source.Limits{}},                  // 100 MB > 64 MiB
		{"ratio", source.Limits{MaxFileBytes: 1 << 30}}, // ~1000:1 > 200:1
		{"total", source.Limits{MaxFileBytes: 1 << 30, MaxRatio: 10000, MaxTotalBytes: 50e6}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			r := walk(t, openBytes(t, data, tc.lim))
			if !errors.Is(r.errs["bomb.jpg"], source.ErrTooLarge) && !errors.Is(r.err, source.ErrTooLarge) {
				t.Errorf("Walk %v, item error %v; want ErrTooLarge", r.err, r.errs["bomb.jpg"])
			}
			if len(r.data) != 0 {
				t.Errorf("bomb was read")
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("refusing the bomb took %v", d)
			}
		})
	}
}

func TestTarGzBomb(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	const n = 20e6
	if err := tw.WriteHeader(&tar.Header{Name: "bomb.jpg", Mode: 0o644, Size: n, Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(tw, zeros(n)); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	r := walk(t, openBytes(t, buf.Bytes(), source.Limits{MaxFileBytes: 1 << 30}))
	if !errors.Is(r.err, source.ErrTooLarge) || len(r.data) != 0 {
		t.Errorf("Walk %v after reading %d entries; want ErrTooLarge before reading", r.err, len(r.data))
	}
}

// rawZip builds a zip with one entry whose header declares size bytes and
// crc, whatever the stream holds.
func rawZip(t *testing.T, method uint16, stream []byte, size uint64, crc uint32) []byte {
	t.Helper()
	var comp bytes.Buffer
	if method == zip.Deflate {
		fw, err := flate.NewWriter(&comp, flate.DefaultCompression)
		if err != nil {
			t.Fatal(err)
		}
		fw.Write(stream) //nolint:errcheck // writes to a bytes.Buffer
		if err := fw.Close(); err != nil {
			t.Fatal(err)
		}
	} else {
		comp.Write(stream)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.CreateRaw(&zip.FileHeader{Name: "liar.jpg", Method: method, CRC32: crc,
		CompressedSize64: uint64(comp.Len()), UncompressedSize64: size})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(comp.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestLyingHeader(t *testing.T) {
	t.Parallel()
	stream := bytes.Repeat([]byte("0123456789abcdef"), 64) // 1024 bytes
	crc := crc32.ChecksumIEEE(stream)
	for _, tc := range []struct {
		name   string
		method uint16
		size   uint64
		crc    uint32
		want   error
	}{
		{"deflate longer", zip.Deflate, 10, crc, source.ErrTooLarge},
		{"stored longer", zip.Store, 10, crc, source.ErrTooLarge},
		{"deflate shorter", zip.Deflate, 2000, crc, io.ErrUnexpectedEOF},
		{"bad crc", zip.Deflate, 1024, crc + 1, zip.ErrChecksum},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := walk(t, openBytes(t, rawZip(t, tc.method, stream, tc.size, tc.crc), source.Limits{}))
			if r.err != nil {
				t.Fatalf("Walk: %v", r.err)
			}
			if !errors.Is(r.errs["liar.jpg"], tc.want) {
				t.Errorf("read error %v, want %v", r.errs["liar.jpg"], tc.want)
			}
		})
	}
}

func TestTruncated(t *testing.T) {
	t.Parallel()
	files := sourcetest.Files()
	for _, k := range kinds {
		full := k.build(t, sorted(files))
		for _, cut := range []int{len(full) / 3, len(full) / 2, len(full) - 700} {
			r := walk(t, openBytes(t, full[:cut], source.Limits{}))
			if r.err == nil && len(r.errs) == 0 {
				t.Errorf("%s cut at %d of %d bytes: no error", k.name, cut, len(full))
			}
		}
	}
}

func TestLimits(t *testing.T) {
	t.Parallel()
	es := []entry{{name: "1.jpg", data: make([]byte, 1000)}, {name: "2.jpg", data: make([]byte, 1000)}, {name: "3.jpg", data: make([]byte, 1001)}}
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			data := k.build(t, es)
			if r := walk(t, openBytes(t, data, source.Limits{MaxEntries: 2})); !errors.Is(r.err, source.ErrTooLarge) {
				t.Errorf("MaxEntries: Walk %v, want ErrTooLarge", r.err)
			}
			if r := walk(t, openBytes(t, data, source.Limits{MaxTotalBytes: 1500})); !errors.Is(r.err, source.ErrTooLarge) || len(r.data) != 1 {
				t.Errorf("MaxTotalBytes: Walk %v after %d items, want ErrTooLarge after 1", r.err, len(r.data))
			}
			r := walk(t, openBytes(t, data, source.Limits{MaxFileBytes: 1000}))
			if r.err != nil || !errors.Is(r.errs["3.jpg"], source.ErrTooLarge) || len(r.data) != 2 {
				t.Errorf("MaxFileBytes: Walk %v, 3.jpg %v, %d read; want nil, ErrTooLarge, 2", r.err, r.errs["3.jpg"], len(r.data))
			}
		})
	}
}

func TestOrder(t *testing.T) {
	t.Parallel()
	es := []entry{{name: "b.jpg", data: []byte{1}}, {name: "a/z.jpg", data: []byte{2}}, {name: "a.jpg", data: []byte{3}}}
	for _, k := range kinds {
		r := walk(t, openBytes(t, k.build(t, es), source.Limits{}))
		want := []string{"a.jpg", "a/z.jpg", "b.jpg"} // zip: lexical
		if k.name != "zip" {
			want = []string{"b.jpg", "a/z.jpg", "a.jpg"} // tar: archive order
		}
		if r.err != nil || !slices.Equal(r.order, want) {
			t.Errorf("%s: order %q (Walk %v), want %q", k.name, r.order, r.err, want)
		}
	}
}

// TestOpenAfterCallback checks that items cannot be opened or read once
// their callback returned.
func TestOpenAfterCallback(t *testing.T) {
	t.Parallel()
	es := []entry{{name: "a.jpg", data: []byte{1, 2, 3}}, {name: "b.jpg", data: []byte{4}}}
	for _, k := range kinds {
		var items []source.Item
		var readers []io.ReadCloser
		err := openBytes(t, k.build(t, es), source.Limits{}).Walk(t.Context(), func(it source.Item, err error) error {
			if err != nil {
				return err
			}
			rc, err := it.Open()
			if err != nil {
				return err
			}
			items, readers = append(items, it), append(readers, rc)
			return nil
		})
		if err != nil {
			t.Fatalf("%s: Walk: %v", k.name, err)
		}
		for i, it := range items {
			if _, err := it.Open(); !errors.Is(err, archive.ErrClosed) {
				t.Errorf("%s %s: Open after callback: %v, want ErrClosed", k.name, it.Locator, err)
			}
			if _, err := io.ReadAll(readers[i]); !errors.Is(err, archive.ErrClosed) {
				t.Errorf("%s %s: Read after callback: %v, want ErrClosed", k.name, it.Locator, err)
			}
			readers[i].Close()
		}
	}
}
