package eval

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gabarit/internal/imageproc"
)

// Pair is one line of a pairs file: two images that show the same person
// (Same) or two different people.
type Pair struct {
	Fold int    // 0-based fold index
	Same bool   // true for a matched pair
	A, B string // image paths, resolved against the root given to ParsePairs
}

// isImageName reports whether a file name looks like an image that the
// pipeline decodes (imageproc.IsImageName).
func isImageName(name string) bool { return imageproc.IsImageName(name) }

// lfwName is the LFW file name of image idx (1-based) of identity name.
func lfwName(name string, idx int) string {
	return fmt.Sprintf("%s_%04d.jpg", name, idx)
}

// folder is the cached listing of one identity folder.
type folder struct {
	images []string        // lexically sorted image file names
	set    map[string]bool // the same names, for LFW-name look-ups
	err    error           // listing error (missing folder, ...)
}

// folderCache lists identity folders once each.
type folderCache struct {
	root string
	dirs map[string]*folder
}

func newFolderCache(root string) *folderCache {
	return &folderCache{root: root, dirs: make(map[string]*folder)}
}

// get returns the listing of identity folder name.
func (c *folderCache) get(name string) *folder {
	if f, ok := c.dirs[name]; ok {
		return f
	}
	f := &folder{}
	f.images, f.err = listImages(filepath.Join(c.root, name))
	f.set = make(map[string]bool, len(f.images))
	for _, n := range f.images {
		f.set[n] = true
	}
	c.dirs[name] = f
	return f
}

// listImages returns the lexically sorted names of the regular image files
// (symbolic links to regular files included) of dir.
func listImages(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if !isImageName(e.Name()) {
			continue
		}
		mode := e.Type()
		if mode&fs.ModeSymlink != 0 {
			info, err := os.Stat(filepath.Join(dir, e.Name()))
			if err != nil {
				continue // dangling link
			}
			mode = info.Mode()
		}
		if mode.IsRegular() {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	return names, nil
}

// validName reports whether an identity name can be used as a folder name
// under root and written in a pairs file.
func validName(name string) bool {
	return name != "" && name != "." && name != ".." &&
		!strings.ContainsAny(name, "/\\ \t\r\n")
}

// resolve turns an image reference (identity name, 1-based index) into a
// path: root/name/name_%04d.jpg when that file exists, else the idx-th file of
// the sorted image listing of root/name.
func (c *folderCache) resolve(name, idx string) (string, error) {
	if !validName(name) {
		return "", fmt.Errorf("bad identity name %q", name)
	}
	i, err := strconv.Atoi(idx)
	if err != nil || i < 1 {
		return "", fmt.Errorf("bad image index %q for %q: want an integer >= 1", idx, name)
	}
	f := c.get(name)
	if f.err != nil {
		if errors.Is(f.err, fs.ErrNotExist) {
			return "", fmt.Errorf("missing identity folder %q", filepath.Join(c.root, name))
		}
		return "", fmt.Errorf("list identity folder: %w", f.err)
	}
	if lfw := lfwName(name, i); f.set[lfw] {
		return filepath.Join(c.root, name, lfw), nil
	}
	if i > len(f.images) {
		if len(f.images) == 0 {
			return "", fmt.Errorf("missing file %s: folder %q holds no image", lfwName(name, i), filepath.Join(c.root, name))
		}
		return "", fmt.Errorf("missing file %s and image index %d out of range: folder %q holds %d images",
			lfwName(name, i), i, filepath.Join(c.root, name), len(f.images))
	}
	return filepath.Join(c.root, name, f.images[i-1]), nil
}

// ParsePairs reads an LFW-format pairs file. The first line is "F N" (folds,
// pairs per class per fold; LFW View 2: "10 300"), or a lone "N" for a
// single fold (LFW View 1 files). Then, for each fold, come N matched lines
// "name i j" and N mismatched lines "name1 i name2 j", separated by tabs or
// spaces; blank lines are skipped. An image reference (name, i) resolves to
// root/name/name_%04d.jpg when that file exists, else to the i-th (1-based)
// image of the lexically sorted listing of root/name (.jpg .jpeg .png .webp
// .bmp .gif .tif .tiff, case-insensitive, hidden files and .pgm left out),
// so that identity-per-folder sets without LFW file names can carry
// LFW-protocol pairs. Folds are numbered from 0 in the returned pairs.
func ParsePairs(r io.Reader, root string) (folds int, pairs []Pair, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	line := 0
	next := func() ([]string, bool) {
		for sc.Scan() {
			line++
			if f := strings.Fields(sc.Text()); len(f) > 0 {
				return f, true
			}
		}
		return nil, false
	}
	head, ok := next()
	if !ok {
		if err := sc.Err(); err != nil {
			return 0, nil, fmt.Errorf("parse pairs: %w", err)
		}
		return 0, nil, errors.New("parse pairs: empty file")
	}
	var n int
	switch len(head) {
	case 1:
		folds = 1
		n, err = strconv.Atoi(head[0])
	case 2:
		folds, err = strconv.Atoi(head[0])
		if err == nil {
			n, err = strconv.Atoi(head[1])
		}
	default:
		err = errors.New("too many fields")
	}
	if err != nil || folds < 1 || n < 1 {
		return 0, nil, fmt.Errorf("parse pairs line %d: bad count %q: want \"folds pairs-per-class\" (e.g. \"10 300\")",
			line, strings.Join(head, " "))
	}
	cache := newFolderCache(root)
	pairs = make([]Pair, 0, 2*folds*n)
	for fold := range folds {
		for k := range 2 * n {
			f, ok := next()
			if !ok {
				if err := sc.Err(); err != nil {
					return 0, nil, fmt.Errorf("parse pairs line %d: %w", line+1, err)
				}
				return 0, nil, fmt.Errorf("parse pairs line %d: unexpected end of file: header announces %d folds of %d+%d pairs, got %d pair lines",
					line+1, folds, n, n, len(pairs))
			}
			same := k < n
			p := Pair{Fold: fold, Same: same}
			var ea, eb error
			switch {
			case same && len(f) == 3:
				p.A, ea = cache.resolve(f[0], f[1])
				p.B, eb = cache.resolve(f[0], f[2])
			case !same && len(f) == 4:
				p.A, ea = cache.resolve(f[0], f[1])
				p.B, eb = cache.resolve(f[2], f[3])
			default:
				kind, want := "matched", "name i j"
				if !same {
					kind, want = "mismatched", "name1 i name2 j"
				}
				return 0, nil, fmt.Errorf("parse pairs line %d: bad field count %d for %s pair %d of fold %d: want %q",
					line, len(f), kind, k%n+1, fold+1, want)
			}
			if err := errors.Join(ea, eb); err != nil {
				return 0, nil, fmt.Errorf("parse pairs line %d: %w", line, err)
			}
			pairs = append(pairs, p)
		}
	}
	if f, ok := next(); ok {
		return 0, nil, fmt.Errorf("parse pairs line %d: extra line %q after %d folds of %d+%d pairs",
			line, strings.Join(f, " "), folds, n, n)
	}
	if err := sc.Err(); err != nil {
		return 0, nil, fmt.Errorf("parse pairs line %d: %w", line+1, err)
	}
	return folds, pairs, nil
}

// identity is one identity folder seen by MakePairs.
type identity struct {
	name string
	refs []int // pairs-file index of each usable image, ascending
}

// imageRefs returns the indices under which ParsePairs resolves each image
// of a folder: the LFW number for LFW-named files, else the position in the
// sorted listing. Images that cannot be referenced unambiguously (their
// position would resolve to another, LFW-named, file) are left out.
func imageRefs(name string, images []string) []int {
	set := make(map[string]bool, len(images))
	for _, im := range images {
		set[im] = true
	}
	seen := make(map[int]bool, len(images))
	var refs []int
	for p, im := range images {
		ref := p + 1
		if num, ok := strings.CutPrefix(im, name+"_"); ok {
			if num, ok := strings.CutSuffix(num, ".jpg"); ok {
				if k, err := strconv.Atoi(num); err == nil && k >= 1 && lfwName(name, k) == im {
					ref = k
				}
			}
		}
		if ref == p+1 && lfwName(name, ref) != im && set[lfwName(name, ref)] {
			continue // position p+1 resolves to the LFW-named file instead
		}
		if !seen[ref] {
			seen[ref] = true
			refs = append(refs, ref)
		}
	}
	slices.Sort(refs)
	return refs
}

// MakePairs builds an LFW-format pairs file from identity folders under root:
// F folds, N matched and N mismatched pairs per fold, deterministic for a
// seed; identities are split across folds (no identity in two folds, like LFW
// View 2); identities with <2 images give no matched pairs but may appear in
// mismatched pairs. Folder names starting with "_" are ignored, and so are
// hidden folders and folders whose names hold white space (the format cannot
// carry them). No pair is written twice. When some fold cannot hold N
// distinct pairs of each kind, every fold gets the largest count all folds
// can hold, and the first line says that count; it is an error only when
// that count is 0. Images are named as ParsePairs resolves them (LFW number
// or position in the sorted listing).
func MakePairs(root string, folds, n int, seed int64, w io.Writer) error {
	if folds < 1 || n < 1 {
		return fmt.Errorf("make pairs: folds (%d) and pairs per fold (%d) must be >= 1", folds, n)
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return fmt.Errorf("make pairs: %w", err)
	}
	var ids []identity
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, "_") || strings.HasPrefix(name, ".") || !validName(name) {
			continue
		}
		info, err := os.Stat(filepath.Join(root, name))
		if err != nil || !info.IsDir() {
			continue
		}
		images, err := listImages(filepath.Join(root, name))
		if err != nil {
			return fmt.Errorf("make pairs: %w", err)
		}
		if refs := imageRefs(name, images); len(refs) > 0 {
			ids = append(ids, identity{name: name, refs: refs})
		}
	}
	slices.SortFunc(ids, func(a, b identity) int { return strings.Compare(a.name, b.name) })
	rng := rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15))
	rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })

	// Deal identities round-robin: first those that can give matched pairs,
	// then the single-image ones, so that every fold gets its share of both.
	split := make([][]identity, folds)
	k := 0
	for _, multi := range []bool{true, false} {
		for _, id := range ids {
			if (len(id.refs) >= 2) == multi {
				split[k%folds] = append(split[k%folds], id)
				k++
			}
		}
	}
	used := n
	for _, fold := range split {
		used = min(used, matchedCapacity(fold, n), mismatchedCapacity(fold, n))
	}
	if used == 0 {
		return fmt.Errorf("make pairs: %d identities with images under %s cannot give %d folds with at least one matched and one mismatched pair each",
			len(ids), root, folds)
	}
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "%d\t%d\n", folds, used)
	for _, fold := range split {
		for _, p := range sampleMatched(rng, fold, used) {
			fmt.Fprintf(bw, "%s\t%d\t%d\n", fold[p.a].name, p.i, p.j)
		}
		for _, p := range sampleMismatched(rng, fold, used) {
			fmt.Fprintf(bw, "%s\t%d\t%s\t%d\n", fold[p.a].name, p.i, fold[p.b].name, p.j)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("make pairs: %w", err)
	}
	return nil
}

// pairRef is a pair of image references: identity indices a, b (equal for a
// matched pair) and image references i, j.
type pairRef struct{ a, i, b, j int }

// matchedCapacity returns min(limit, number of distinct matched pairs).
func matchedCapacity(ids []identity, limit int) int {
	c := 0
	for _, id := range ids {
		k := len(id.refs)
		c += k * (k - 1) / 2
		if c >= limit {
			return limit
		}
	}
	return c
}

// mismatchedCapacity returns min(limit, number of distinct mismatched pairs).
func mismatchedCapacity(ids []identity, limit int) int {
	c, seen := 0, 0
	for _, id := range ids {
		c += seen * len(id.refs)
		if c >= limit {
			return limit
		}
		seen += len(id.refs)
	}
	return c
}

// enumerateLimit is the capacity up to which all candidate pairs are listed
// and shuffled instead of drawn at random with rejection.
func enumerateLimit(n int) int { return max(4*n, 4096) }

// sampleMatched draws n distinct matched pairs (n <= capacity), sorted.
func sampleMatched(rng *rand.Rand, ids []identity, n int) []pairRef {
	var out []pairRef
	if matchedCapacity(ids, enumerateLimit(n)+1) <= enumerateLimit(n) {
		for a, id := range ids {
			for x := range id.refs {
				for y := x + 1; y < len(id.refs); y++ {
					out = append(out, pairRef{a, id.refs[x], a, id.refs[y]})
				}
			}
		}
		rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
		out = out[:n]
	} else {
		// Uniform over identities that still have unused pairs, then
		// uniform over that identity's image pairs.
		var cand []int
		left := make(map[int]int)
		for a, id := range ids {
			if k := len(id.refs); k >= 2 {
				cand = append(cand, a)
				left[a] = k * (k - 1) / 2
			}
		}
		seen := make(map[pairRef]bool, n)
		for len(out) < n && len(cand) > 0 {
			ci := rng.IntN(len(cand))
			a := cand[ci]
			refs := ids[a].refs
			x, y := rng.IntN(len(refs)), rng.IntN(len(refs)-1)
			if y >= x {
				y++
			}
			if x > y {
				x, y = y, x
			}
			p := pairRef{a, refs[x], a, refs[y]}
			if seen[p] {
				continue
			}
			seen[p] = true
			out = append(out, p)
			if left[a]--; left[a] == 0 {
				cand = slices.Delete(cand, ci, ci+1)
			}
		}
	}
	slices.SortFunc(out, func(p, q pairRef) int {
		if c := strings.Compare(ids[p.a].name, ids[q.a].name); c != 0 {
			return c
		}
		if p.i != q.i {
			return p.i - q.i
		}
		return p.j - q.j
	})
	return out
}

// sampleMismatched draws n distinct mismatched pairs (n <= capacity), sorted,
// with the lexically smaller name first.
func sampleMismatched(rng *rand.Rand, ids []identity, n int) []pairRef {
	var out []pairRef
	norm := func(p pairRef) pairRef {
		if ids[p.a].name > ids[p.b].name {
			p.a, p.i, p.b, p.j = p.b, p.j, p.a, p.i
		}
		return p
	}
	enumerate := func() {
		out = out[:0]
		for a := range ids {
			for b := a + 1; b < len(ids); b++ {
				for _, i := range ids[a].refs {
					for _, j := range ids[b].refs {
						out = append(out, norm(pairRef{a, i, b, j}))
					}
				}
			}
		}
		rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
		out = out[:n]
	}
	if mismatchedCapacity(ids, enumerateLimit(n)+1) <= enumerateLimit(n) {
		enumerate()
	} else {
		// Uniform over identity pairs, then over their images; the
		// capacity is > 4n so rejections are rare, but a pathological
		// split (one huge identity) falls back to enumeration.
		seen := make(map[pairRef]bool, n)
		for tries := 0; len(out) < n; tries++ {
			if tries > 1000*n {
				enumerate()
				break
			}
			a, b := rng.IntN(len(ids)), rng.IntN(len(ids)-1)
			if b >= a {
				b++
			}
			p := norm(pairRef{a, ids[a].refs[rng.IntN(len(ids[a].refs))], b, ids[b].refs[rng.IntN(len(ids[b].refs))]})
			if seen[p] {
				continue
			}
			seen[p] = true
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(p, q pairRef) int {
		if c := strings.Compare(ids[p.a].name, ids[q.a].name); c != 0 {
			return c
		}
		if p.i != q.i {
			return p.i - q.i
		}
		if c := strings.Compare(ids[p.b].name, ids[q.b].name); c != 0 {
			return c
		}
		return p.j - q.j
	})
	return out
}
