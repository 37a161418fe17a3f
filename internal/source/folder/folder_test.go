package folder_test

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"gabarit/internal/source"
	"gabarit/internal/source/folder"
	"gabarit/internal/source/sourcetest"
)

// write creates files (locator → content) under dir.
func write(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func open(t *testing.T, dir string, lim source.Limits) *folder.Source {
	t.Helper()
	src, err := folder.Open(dir, lim)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return src
}

func TestConformance(t *testing.T) {
	sourcetest.Run(t, func(t *testing.T, files map[string][]byte) source.Source {
		dir := t.TempDir()
		write(t, dir, files)
		return open(t, dir, source.Limits{})
	})
}

// result is what one Walk reported.
type result struct {
	items map[string]source.Item
	errs  map[string]error
	order []string
}

func walk(t *testing.T, src source.Source) result {
	t.Helper()
	r := result{items: map[string]source.Item{}, errs: map[string]error{}}
	err := src.Walk(t.Context(), func(it source.Item, err error) error {
		r.order = append(r.order, it.Locator)
		if err != nil {
			r.errs[it.Locator] = err
			var ie *source.ItemError
			if !errors.As(err, &ie) || ie.Locator != it.Locator {
				t.Errorf("item error %v is not an *ItemError naming %q", err, it.Locator)
			}
			return nil
		}
		r.items[it.Locator] = it
		return nil
	})
	if err != nil {
		t.Fatalf("Walk: %v", err)
	}
	return r
}

func read(it source.Item) ([]byte, error) {
	rc, err := it.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write(t, dir, map[string][]byte{"f.jpg": {1}})
	for _, p := range []string{filepath.Join(dir, "missing"), filepath.Join(dir, "f.jpg")} {
		if _, err := folder.Open(p, source.Limits{}); err == nil {
			t.Errorf("Open(%s) succeeded, want an error", p)
		}
	}
}

func TestRootSymlinkResolved(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	real := filepath.Join(base, "real")
	write(t, real, map[string][]byte{"a.jpg": {1, 2}})
	link := filepath.Join(base, "link")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	src := open(t, link, source.Limits{})
	want, _ := filepath.EvalSymlinks(real)
	if src.Root() != want {
		t.Errorf("Root() = %s, want %s", src.Root(), want)
	}
	if r := walk(t, src); len(r.items) != 1 {
		t.Errorf("listed %v, want a.jpg", r.order)
	}
}

func TestSymlinks(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	root := filepath.Join(base, "root")
	outside := filepath.Join(base, "outside")
	write(t, outside, map[string][]byte{"secret.jpg": {9, 9, 9}, "d/in.jpg": {8}})
	write(t, root, map[string][]byte{"real.jpg": {1, 2, 3}, "sub/x.jpg": {4}})
	links := map[string]string{
		"escape.jpg":     filepath.Join(outside, "secret.jpg"), // file outside
		"escapedir":      filepath.Join(outside, "d"),          // directory outside
		"rel-escape.jpg": "../outside/secret.jpg",              // relative, outside
		"inside.jpg":     "real.jpg",                           // file inside
		"abs-inside.jpg": filepath.Join(root, "sub", "x.jpg"),  // absolute, to a file inside
		"subdir":         "sub",                                // directory inside: not followed
		"dangling.jpg":   "nowhere.jpg",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	r := walk(t, open(t, root, source.Limits{}))

	for _, name := range []string{"escape.jpg", "escapedir", "rel-escape.jpg"} {
		if !errors.Is(r.errs[name], source.ErrEscape) {
			t.Errorf("%s: error %v, want ErrEscape", name, r.errs[name])
		}
	}
	if r.errs["dangling.jpg"] == nil {
		t.Errorf("dangling.jpg: no item error")
	}
	wantItems := []string{"abs-inside.jpg", "inside.jpg", "real.jpg", "sub/x.jpg"}
	got := slices.Sorted(func(yield func(string) bool) {
		for k := range r.items {
			if !yield(k) {
				return
			}
		}
	})
	if !slices.Equal(got, wantItems) {
		t.Errorf("listed %q, want %q (symlinked directories not followed)", got, wantItems)
	}
	if it, ok := r.items["inside.jpg"]; ok {
		data, err := read(it)
		if err != nil || len(data) != 3 || it.Size != 3 {
			t.Errorf("inside.jpg: Size %d, read %d bytes, err %v; want the target's 3 bytes", it.Size, len(data), err)
		}
	}
	if it, ok := r.items["abs-inside.jpg"]; ok {
		data, err := read(it)
		if err != nil || len(data) != 1 || data[0] != 4 {
			t.Errorf("abs-inside.jpg: read %v, err %v; want the target's byte", data, err)
		}
	}
	if !slices.IsSorted(r.order) {
		t.Errorf("walk order %q is not lexical", r.order)
	}
}

func TestTooLarge(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write(t, dir, map[string][]byte{"big.jpg": make([]byte, 1001), "ok.jpg": make([]byte, 1000)})
	r := walk(t, open(t, dir, source.Limits{MaxFileBytes: 1000}))
	if !errors.Is(r.errs["big.jpg"], source.ErrTooLarge) {
		t.Errorf("big.jpg: error %v, want ErrTooLarge", r.errs["big.jpg"])
	}
	if _, ok := r.items["ok.jpg"]; !ok {
		t.Errorf("ok.jpg not listed")
	}
}

func TestMaxEntries(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write(t, dir, map[string][]byte{"1.jpg": {1}, "2.jpg": {2}, "3.jpg": {3}})
	err := open(t, dir, source.Limits{MaxEntries: 2}).Walk(t.Context(), func(source.Item, error) error { return nil })
	if !errors.Is(err, source.ErrTooLarge) {
		t.Errorf("Walk over MaxEntries: %v, want ErrTooLarge", err)
	}
}

// TestChangedAfterListing covers files that change between listing and
// opening: removed, grown, or swapped for a symlink leading outside the root.
func TestChangedAfterListing(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	root := filepath.Join(base, "root")
	write(t, base, map[string][]byte{"secret.jpg": {6, 6, 6}})
	write(t, root, map[string][]byte{"gone.jpg": {1}, "grown.jpg": {1, 2}, "swapped.jpg": {1, 2, 3}, "dir/swapdir.jpg": {4}})
	src := open(t, root, source.Limits{})
	r := walk(t, src)
	if len(r.items) != 4 {
		t.Fatalf("listed %q, want 4 files", r.order)
	}
	if err := os.Remove(filepath.Join(root, "gone.jpg")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "grown.jpg"), []byte{1, 2, 3, 4}, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(root, "swapped.jpg")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(base, "secret.jpg"), filepath.Join(root, "swapped.jpg")); err != nil {
		t.Fatal(err)
	}
	// A directory component swapped for a symlink to a directory outside.
	if err := os.RemoveAll(filepath.Join(root, "dir")); err != nil {
		t.Fatal(err)
	}
	write(t, base, map[string][]byte{"evil/swapdir.jpg": {7}})
	if err := os.Symlink(filepath.Join(base, "evil"), filepath.Join(root, "dir")); err != nil {
		t.Fatal(err)
	}

	if _, err := read(r.items["gone.jpg"]); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("gone.jpg: %v, want ErrNotExist", err)
	}
	if _, err := read(r.items["grown.jpg"]); !errors.Is(err, source.ErrTooLarge) {
		t.Errorf("grown.jpg: %v, want ErrTooLarge", err)
	}
	for _, name := range []string{"swapped.jpg", "dir/swapdir.jpg"} {
		data, err := read(r.items[name])
		if !errors.Is(err, source.ErrEscape) {
			t.Errorf("%s: %v (%d bytes read), want ErrEscape", name, err, len(data))
		}
		var ie *source.ItemError
		if !errors.As(err, &ie) || ie.Locator != name {
			t.Errorf("%s: error %v does not name the locator", name, err)
		}
	}
}

// TestUnreadableDir removes a directory while the walk is under way (which
// works as root, unlike a chmod): it is reported and the walk goes on.
func TestUnreadableDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write(t, dir, map[string][]byte{"a.jpg": {1}, "m/x.jpg": {2}, "z.jpg": {3}})
	var order []string
	var dirErr error
	err := open(t, dir, source.Limits{}).Walk(t.Context(), func(it source.Item, err error) error {
		order = append(order, it.Locator)
		if it.Locator == "a.jpg" {
			if err := os.RemoveAll(filepath.Join(dir, "m")); err != nil {
				t.Fatal(err)
			}
		}
		if it.Locator == "m" {
			dirErr = err
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Walk: %v", err)
	}
	if !errors.Is(dirErr, fs.ErrNotExist) {
		t.Errorf("vanished directory: error %v, want ErrNotExist", dirErr)
	}
	if want := []string{"a.jpg", "m", "z.jpg"}; !slices.Equal(order, want) {
		t.Errorf("walk order %q, want %q", order, want)
	}
}

// TestUnreadableDirChmod checks a directory without read permission.
func TestUnreadableDirChmod(t *testing.T) {
	t.Parallel()
	if os.Geteuid() == 0 {
		t.Skip("root ignores directory permissions; TestUnreadableDir covers the path")
	}
	dir := t.TempDir()
	write(t, dir, map[string][]byte{"locked/x.jpg": {1}, "z.jpg": {2}})
	locked := filepath.Join(dir, "locked")
	if err := os.Chmod(locked, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(locked, 0o755) }) //nolint:errcheck // best effort, so TempDir can clean up
	r := walk(t, open(t, dir, source.Limits{}))
	if !errors.Is(r.errs["locked"], fs.ErrPermission) {
		t.Errorf("locked: %v, want ErrPermission", r.errs["locked"])
	}
	if _, ok := r.items["z.jpg"]; !ok {
		t.Errorf("walk stopped at the unreadable directory: listed %q", r.order)
	}
}
