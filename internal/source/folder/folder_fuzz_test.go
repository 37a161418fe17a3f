package folder_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gabarit/internal/source"
	"gabarit/internal/source/folder"
)

// FuzzFolderWalk builds a tree inside a root from a script of lines, "f
// NAME" (a file, its size the name's length times 40 bytes), "d NAME" (a
// folder) or "l NAME TARGET" (a symlink to any target, outside the root
// too), walks it, and checks the walker's promises: every item's locator is
// local, the file it names (links resolved) lies inside the root and is no
// hidden file, an item's size is within MaxFileBytes, and it reads no more
// bytes than that size; per-item problems come as *source.ItemError.
func FuzzFolderWalk(f *testing.F) {
	for _, s := range []string{
		"f a.jpg\nd sub\nf sub/b.png\nf c.txt",
		"f a.jpg\nl in.jpg a.jpg\nl out.jpg ../outside/secret.jpg\nl abs.jpg /etc/passwd",
		"d sub\nf sub/x.jpg\nl link sub\nl up ..\nl loop.jpg loop.jpg",
		"d .hidden\nf .hidden/h.jpg\nf .h.jpg\nf big-big-big-big.jpg",
		"l root.jpg .\nl dir.jpg sub\nd sub",
	} {
		f.Add(s)
	}
	base := f.TempDir() // calls in one process run one at a time
	lim := source.Limits{MaxFileBytes: 600, MaxEntries: 20}
	f.Fuzz(func(t *testing.T, script string) {
		root, outside := filepath.Join(base, "root"), filepath.Join(base, "outside")
		if err := os.RemoveAll(base); err != nil {
			t.Fatal(err)
		}
		for _, d := range []string{root, outside} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(outside, "secret.jpg"), []byte("outside the root"), 0o644); err != nil {
			t.Fatal(err)
		}
		for line := range strings.SplitSeq(script, "\n") {
			op, rest, _ := strings.Cut(line, " ")
			name, target, _ := strings.Cut(rest, " ")
			if !filepath.IsLocal(name) || strings.ContainsRune(name+target, 0) {
				continue // the tree itself stays inside the root
			}
			p := filepath.Join(root, name)
			switch op {
			case "f":
				_ = os.WriteFile(p, []byte(strings.Repeat(name, 40)), 0o644) // a name the OS refuses is skipped
			case "d":
				_ = os.MkdirAll(p, 0o755)
			case "l":
				_ = os.Symlink(target, p)
			}
		}
		src, err := folder.Open(root, lim)
		if err != nil {
			t.Fatal(err)
		}
		realRoot, err := filepath.EvalSymlinks(root)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		err = src.Walk(context.Background(), func(it source.Item, err error) error {
			if err != nil {
				var ie *source.ItemError
				if !errors.As(err, &ie) {
					t.Fatalf("item error %v is not a *source.ItemError", err)
				}
				return nil
			}
			n++
			loc := it.Locator
			if !filepath.IsLocal(filepath.FromSlash(loc)) {
				t.Fatalf("item %q is not local", loc)
			}
			for el := range strings.SplitSeq(loc, "/") {
				if strings.HasPrefix(el, ".") {
					t.Fatalf("item %q is hidden", loc)
				}
			}
			if real, err := filepath.EvalSymlinks(filepath.Join(root, filepath.FromSlash(loc))); err == nil {
				if rel, err := filepath.Rel(realRoot, real); err != nil || !filepath.IsLocal(rel) {
					t.Fatalf("item %q is %s, outside the root", loc, real)
				}
			}
			if it.Size < 0 || it.Size > lim.MaxFileBytes {
				t.Fatalf("item %q of %d bytes, limit %d", loc, it.Size, lim.MaxFileBytes)
			}
			rc, err := it.Open()
			if err != nil {
				return nil
			}
			defer rc.Close()
			got, err := io.Copy(io.Discard, io.LimitReader(rc, lim.MaxFileBytes+1))
			if got > it.Size || (err == nil && got != it.Size) {
				t.Fatalf("item %q read %d bytes (%v), listed %d", loc, got, err, it.Size)
			}
			return nil
		})
		if err == nil && n > lim.MaxEntries {
			t.Fatalf("%d items, limit %d", n, lim.MaxEntries)
		}
	})
}
