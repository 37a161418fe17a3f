package server

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"math"
	"sync"
	"time"

	"gabarit/internal/app"
	"gabarit/internal/face"
	"gabarit/internal/imageproc"
)

// Probe handles: the console analyses a photo to show its faces (POST
// /api/v1/detect) and then searches one of them (POST /api/v1/searches).
// The detect step keeps the photo and its analysis in memory under a
// random handle, bound to the user, so that the search sends the handle
// instead of the photo and nothing is decoded or detected twice. A handle
// serves one search: taken, it is forgotten; unused, it expires. The
// photo and its templates are never written anywhere, and are zeroed when
// dropped (taken and used, expired or evicted). A handle that is gone
// costs nothing but the upload: the search is sent again with the photo.
const (
	// probeTTL is how long a detected photo waits for its search.
	probeTTL = 10 * time.Minute
	// probeMaxItems is the most photos held at once, all users together;
	// the oldest goes first.
	probeMaxItems = 64
	// probeMaxBytes bounds the memory the photos and their templates take
	// (bytes, all users together); the oldest goes first.
	probeMaxBytes = 256 << 20
)

// probeCache holds detected photos until their search, in memory only.
type probeCache struct {
	mu       sync.Mutex
	ttl      time.Duration
	maxItems int
	maxBytes int64
	now      func() time.Time
	bytes    int64
	seq      uint64 // order of arrival, for eviction
	m        map[string]*heldProbe
	timer    *time.Timer // the next sweep of expired photos; nil when none is due
}

// heldProbe is one detected photo: its bytes and their analysis, for its
// owner only.
type heldProbe struct {
	owner   string
	photo   []byte
	an      face.Analysis
	size    int64
	seq     uint64
	expires time.Time
}

// wipe zeroes the photo and its templates.
func (h *heldProbe) wipe() {
	clear(h.photo)
	for _, f := range h.an.Faces {
		clear(f.Embedding)
	}
	h.photo, h.an.Faces = nil, nil
}

func newProbeCache(ttl time.Duration, maxItems int, maxBytes int64, now func() time.Time) *probeCache {
	return &probeCache{ttl: ttl, maxItems: maxItems, maxBytes: maxBytes, now: now, m: map[string]*heldProbe{}}
}

// put keeps photo and its analysis for owner and returns the handle that
// takes them back, or "" when the photo is too large to keep (its search
// then sends it again). The cache takes ownership of photo and an: it
// zeroes them when it drops them.
func (c *probeCache) put(owner string, photo []byte, an face.Analysis) string {
	size := int64(len(photo))
	for _, f := range an.Faces {
		size += int64(4*len(f.Embedding)) + 256 // the face's other fields, roughly
	}
	if size > c.maxBytes {
		return ""
	}
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails on Linux
	id := hex.EncodeToString(b[:])
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	c.sweepLocked(now)
	for len(c.m) > 0 && (len(c.m) >= c.maxItems || c.bytes+size > c.maxBytes) {
		c.dropLocked(c.oldestLocked())
	}
	c.seq++
	c.m[id] = &heldProbe{owner: owner, photo: photo, an: an, size: size, seq: c.seq, expires: now.Add(c.ttl)}
	c.bytes += size
	if c.timer == nil {
		c.timer = time.AfterFunc(c.ttl, c.expire)
	}
	return id
}

// take returns owner's photo under id and forgets it: the caller zeroes it
// (wipe) when done. An unknown or expired handle, or another user's, gives
// false; another user's is left in place.
func (c *probeCache) take(owner, id string) (*heldProbe, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sweepLocked(c.now())
	h, ok := c.m[id]
	if !ok || h.owner != owner {
		return nil, false
	}
	delete(c.m, id)
	c.bytes -= h.size
	return h, true
}

// held is how many photos are held, and their size in bytes.
func (c *probeCache) held() (n int, bytes int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m), c.bytes
}

// expire drops the expired photos, and comes back while photos are held.
func (c *probeCache) expire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sweepLocked(c.now())
	c.timer = nil
	if len(c.m) > 0 {
		c.timer = time.AfterFunc(c.ttl/4, c.expire)
	}
}

// sweepLocked drops the photos expired at now.
func (c *probeCache) sweepLocked(now time.Time) {
	for id, h := range c.m {
		if !now.Before(h.expires) {
			c.dropLocked(id)
		}
	}
}

// oldestLocked is the handle of the photo held longest.
func (c *probeCache) oldestLocked() string {
	var id string
	var seq uint64
	for k, h := range c.m {
		if id == "" || h.seq < seq {
			id, seq = k, h.seq
		}
	}
	return id
}

// dropLocked forgets the photo under id and zeroes it.
func (c *probeCache) dropLocked(id string) {
	h, ok := c.m[id]
	if !ok {
		return
	}
	delete(c.m, id)
	c.bytes -= h.size
	h.wipe()
}

// Thumbnails of the faces found by the detect step, shown in the choice of
// the face to search.
const (
	// thumbSide is the longer side of a thumbnail, in pixels (shown at
	// half that size, sharp on dense screens).
	thumbSide = 96
	// thumbMax is the most faces of one photo given a thumbnail; the
	// others are offered by number only.
	thumbMax = 64
)

// faceThumbs returns a small JPEG of each face of an, the analysis of
// photo, as data: URLs in the order of an.Faces ("" for a face it cannot
// cut). The photo is decoded once, at the coarsest scale that keeps the
// smallest face sharp at thumbSide.
func faceThumbs(photo []byte, an face.Analysis) ([]string, error) {
	faces := an.Faces[:min(len(an.Faces), thumbMax)]
	if len(faces) == 0 {
		return nil, nil
	}
	least := float64(thumbSide) * 5 / 8
	smallest := math.Inf(1)
	for _, f := range faces {
		smallest = min(smallest, math.Max(f.Box.W, f.Box.H)*(1+2*app.ProbeCropMargin))
	}
	target := 0 // full size
	if smallest > least {
		target = int(math.Ceil(float64(max(an.Width, an.Height)) * least / smallest))
	}
	dec, err := imageproc.Decode(photo, imageproc.DecodeOptions{TargetSide: target})
	if err != nil {
		return nil, err
	}
	defer clear(dec.Img.Pix)
	sx, sy := float64(dec.Img.W)/float64(dec.Width), float64(dec.Img.H)/float64(dec.Height)
	out := make([]string, len(faces))
	for i, f := range faces {
		jpg, err := app.EncodeCrop(dec.Img, f.Box, sx, sy, app.ProbeCropMargin, thumbSide)
		if err != nil {
			continue // a box outside the picture: offered by number only
		}
		out[i] = "data:image/jpeg;base64," + base64.StdEncoding.EncodeToString(jpg)
		clear(jpg)
	}
	return out, nil
}
