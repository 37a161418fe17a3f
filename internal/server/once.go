package server

import (
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"
)

// shownOnce holds secrets (a new API token) between the POST that makes
// them and the one GET that shows them (POST, redirect, GET): reloading the
// page shows nothing again and makes nothing new. A secret is kept for its
// owner only, in memory, for a few minutes at most.
type shownOnce struct {
	mu  sync.Mutex
	ttl time.Duration
	m   map[string]onceItem
}

type onceItem struct {
	owner, secret string
	until         time.Time
}

func newShownOnce(ttl time.Duration) *shownOnce {
	return &shownOnce{ttl: ttl, m: map[string]onceItem{}}
}

// put keeps secret for owner and returns the key that shows it once.
func (o *shownOnce) put(owner, secret string, now time.Time) string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails on Linux
	key := hex.EncodeToString(b[:])
	o.mu.Lock()
	defer o.mu.Unlock()
	for k, it := range o.m {
		if now.After(it.until) {
			delete(o.m, k)
		}
	}
	o.m[key] = onceItem{owner: owner, secret: secret, until: now.Add(o.ttl)}
	return key
}

// take returns owner's secret under key and forgets it; a second take, an
// expired secret or another owner's key gives false.
func (o *shownOnce) take(owner, key string, now time.Time) (string, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	it, ok := o.m[key]
	if !ok || it.owner != owner {
		return "", false
	}
	delete(o.m, key)
	return it.secret, !now.After(it.until)
}
