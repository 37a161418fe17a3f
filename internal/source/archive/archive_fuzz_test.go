package archive_test

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gabarit/internal/source"
	"gabarit/internal/source/archive"
)

// fuzzLimits are small, so that the fuzzer reaches them.
var fuzzLimits = source.Limits{MaxFileBytes: 256, MaxTotalBytes: 1 << 10, MaxEntries: 32, MaxRatio: 20}

// fuzzArchiveSeeds are small zip, tar and tar.gz archives with ordinary,
// escaping, duplicate, link and oversized entries.
func fuzzArchiveSeeds(tb testing.TB) [][]byte {
	names := []string{"a.jpg", "d/b.png", "../up.jpg", `..\win.jpg`, "/abs.jpg", "C:x.jpg", "d/b.png", "big.jpg", "n.txt"}
	body := func(name string) []byte {
		if name == "big.jpg" {
			return bytes.Repeat([]byte{0}, 300) // over MaxFileBytes, compresses well
		}
		return []byte("data of " + name)
	}
	var zbuf bytes.Buffer
	zw := zip.NewWriter(&zbuf)
	for i, n := range names {
		h := &zip.FileHeader{Name: n, Method: zip.Deflate, Modified: time.Unix(1e9, 0)}
		if i%2 == 1 {
			h.Method = zip.Store
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			tb.Fatal(err)
		}
		w.Write(body(n))
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	var tbuf bytes.Buffer
	tw := tar.NewWriter(&tbuf)
	for _, n := range names {
		b := body(n)
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
			tb.Fatal(err)
		}
		tw.Write(b)
	}
	tw.WriteHeader(&tar.Header{Name: "link.jpg", Linkname: "/etc/passwd", Typeflag: tar.TypeSymlink, Format: tar.FormatPAX})
	tw.WriteHeader(&tar.Header{Name: "dir/", Typeflag: tar.TypeDir, Mode: 0o755, Format: tar.FormatPAX})
	if err := tw.Close(); err != nil {
		tb.Fatal(err)
	}
	var gbuf bytes.Buffer
	gw := gzip.NewWriter(&gbuf)
	gw.Write(tbuf.Bytes())
	gw.Close()
	return [][]byte{zbuf.Bytes(), tbuf.Bytes(), gbuf.Bytes()}
}

// FuzzArchiveWalk walks arbitrary bytes as an archive and checks what the
// package promises: no panic; every item it yields has a local, clean
// locator (no zip-slip) and reads no more than its declared size, which is
// within MaxFileBytes; all items together read no more than MaxTotalBytes;
// per-entry problems come as *source.ItemError.
func FuzzArchiveWalk(f *testing.F) {
	for _, s := range fuzzArchiveSeeds(f) {
		f.Add(s)
	}
	file := filepath.Join(f.TempDir(), "fuzz.archive") // calls in one process run one at a time
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(file, data, 0o600); err != nil {
			t.Fatal(err)
		}
		src, err := archive.Open(file, fuzzLimits)
		if err != nil {
			return
		}
		var total int64
		walkErr := src.Walk(context.Background(), func(it source.Item, err error) error {
			if err != nil {
				var ie *source.ItemError
				if !errors.As(err, &ie) {
					t.Fatalf("item error %v is not a *source.ItemError", err)
				}
				return nil
			}
			loc := it.Locator
			if !filepath.IsLocal(filepath.FromSlash(loc)) || path.Clean(loc) != loc || strings.Contains(loc, `\`) {
				t.Fatalf("item %q escapes the archive", loc)
			}
			if it.Size < 0 || it.Size > fuzzLimits.MaxFileBytes {
				t.Fatalf("item %q of %d bytes, limit %d", loc, it.Size, fuzzLimits.MaxFileBytes)
			}
			rc, err := it.Open()
			if err != nil {
				return nil
			}
			defer rc.Close()
			n, err := io.Copy(io.Discard, io.LimitReader(rc, fuzzLimits.MaxFileBytes+1))
			total += n
			if n > it.Size {
				t.Fatalf("item %q read %d bytes, declared %d", loc, n, it.Size)
			}
			if err == nil && n != it.Size {
				t.Fatalf("item %q read %d bytes without error, declared %d", loc, n, it.Size)
			}
			if total > fuzzLimits.MaxTotalBytes {
				t.Fatalf("%d bytes read from the archive, limit %d", total, fuzzLimits.MaxTotalBytes)
			}
			return nil
		})
		_ = walkErr // a damaged archive may stop the walk: any error will do, a panic will not
	})
}
