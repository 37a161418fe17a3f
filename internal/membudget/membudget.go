// Package membudget shares a memory budget, in bytes, between the goroutines
// of one process that decode and analyse images: each reserves the bytes an
// image is estimated to need before decoding it and gives them back after
// the analysis, so that no set of inputs can push the process past its
// ceiling. Heavy images wait their turn; an image that needs more than the
// whole budget is refused at once.
package membudget

import (
	"container/list"
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ErrOverBudget matches (errors.Is) the errors of Acquire when the bytes
// asked for cannot be granted: a *TooBigError (more than the whole budget)
// or a *BusyError (not granted within the wait allowed).
var ErrOverBudget = errors.New("over the memory budget")

// TooBigError reports a request for more bytes than the whole budget. It is
// returned at once, without waiting.
type TooBigError struct {
	Need, Size int64 // bytes
}

// Error returns the message.
func (e *TooBigError) Error() string {
	return "the photo needs " + MiB(e.Need) + " of memory to decode; the limit is " + MiB(e.Size)
}

// Is reports whether target is ErrOverBudget.
func (e *TooBigError) Is(target error) bool { return target == ErrOverBudget }

// BusyError reports a request not granted within the wait allowed (see
// WithMaxWait) or before its context ended, because other images held the
// budget.
type BusyError struct {
	Need int64 // bytes
	Err  error // context.DeadlineExceeded, context.Canceled, or nil when MaxWait ran out
}

// Error returns the message.
func (e *BusyError) Error() string {
	return "the memory for this photo (" + MiB(e.Need) + ") is in use by other photos being analysed"
}

// Is reports whether target is ErrOverBudget.
func (e *BusyError) Is(target error) bool { return target == ErrOverBudget }

// Unwrap returns the context's error, if any.
func (e *BusyError) Unwrap() error { return e.Err }

// MiB formats n bytes in mebibytes for people ("512 MiB").
func MiB(n int64) string { return strconv.FormatInt((n+(1<<20)-1)>>20, 10) + " MiB" }

// Budget is a weighted semaphore of bytes. Waiters are served in order of
// arrival, so that a heavy image is not starved by light ones. The zero
// value is not usable; a nil *Budget grants everything at once. Its methods
// are safe for concurrent use.
type Budget struct {
	size int64

	mu      sync.Mutex
	used    int64
	high    int64
	waiters list.List // of *waiter
	// queued is broadcast when a waiter joins the queue, for whoever
	// watches it (the tests wait on it rather than on time).
	queued *sync.Cond
}

type waiter struct {
	n     int64
	ready chan struct{} // closed when granted
}

// New returns a budget of size bytes (size > 0).
func New(size int64) *Budget {
	if size <= 0 {
		panic("membudget: size must be positive")
	}
	b := &Budget{size: size}
	b.queued = sync.NewCond(&b.mu)
	return b
}

// Size returns the budget in bytes (0 for a nil budget).
func (b *Budget) Size() int64 {
	if b == nil {
		return 0
	}
	return b.size
}

// InUse returns the bytes held now.
func (b *Budget) InUse() int64 {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// HighWater returns the most bytes ever held at once. It never exceeds Size.
func (b *Budget) HighWater() int64 {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.high
}

// Acquire reserves n bytes, waiting while other holders leave too little,
// and returns the function that gives them back (safe to call more than
// once; only the first call counts). It returns a *TooBigError at once when
// n exceeds the whole budget, and a *BusyError when ctx ends, or the wait
// set by WithMaxWait runs out, before the bytes are granted. A nil budget
// grants at once.
func (b *Budget) Acquire(ctx context.Context, n int64) (release func(), err error) {
	if b == nil || n <= 0 {
		return func() {}, nil
	}
	if n > b.size {
		return nil, &TooBigError{Need: n, Size: b.size}
	}
	b.mu.Lock()
	if b.size-b.used >= n && b.waiters.Len() == 0 {
		b.grant(n)
		b.mu.Unlock()
		return b.releaser(n), nil
	}
	w := &waiter{n: n, ready: make(chan struct{})}
	elem := b.waiters.PushBack(w)
	b.queued.Broadcast()
	b.mu.Unlock()

	var timeout <-chan time.Time
	if d, ok := ctx.Value(maxWaitKey{}).(time.Duration); ok {
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	var cause error
	select {
	case <-w.ready:
		return b.releaser(n), nil
	case <-ctx.Done():
		cause = ctx.Err()
	case <-timeout:
	}
	b.mu.Lock()
	select {
	case <-w.ready:
		// Granted while giving up: keep it, the caller goes on.
		b.mu.Unlock()
		return b.releaser(n), nil
	default:
	}
	isFront := b.waiters.Front() == elem
	b.waiters.Remove(elem)
	if isFront {
		b.notify() // the next waiter may fit now
	}
	b.mu.Unlock()
	return nil, &BusyError{Need: n, Err: cause}
}

// grant counts n bytes as held; b.mu is held.
func (b *Budget) grant(n int64) {
	b.used += n
	b.high = max(b.high, b.used)
}

// notify grants the waiters at the front of the queue that fit; b.mu is held.
func (b *Budget) notify() {
	for {
		e := b.waiters.Front()
		if e == nil {
			return
		}
		w := e.Value.(*waiter)
		if b.size-b.used < w.n {
			return
		}
		b.grant(w.n)
		b.waiters.Remove(e)
		close(w.ready)
	}
}

func (b *Budget) releaser(n int64) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			b.mu.Lock()
			b.used -= n
			b.notify()
			b.mu.Unlock()
		})
	}
}

type maxWaitKey struct{}

// WithMaxWait returns a context under which Acquire waits at most d for
// its bytes, then fails with a *BusyError: for requests that should be
// refused (503) rather than queued behind heavy images. It is a context
// value because the bytes are reserved deep in the face path, behind
// interfaces that take only a context; the analysis itself is not bound
// by d.
func WithMaxWait(ctx context.Context, d time.Duration) context.Context {
	return context.WithValue(ctx, maxWaitKey{}, d)
}

// EnvVar is the environment variable that sets the budget when the
// --memory-budget flag is not given.
const EnvVar = "GABARIT_MEMORY_BUDGET"

// Default is the budget of a process that sets none: with the networks and
// the Go runtime, a process under it stays below 1.5 GB.
const Default = 768 << 20

// Parse reads a size in bytes: a whole number with an optional unit (K, M,
// G, with or without "iB"/"B": all powers of 1024), such as "768M" or
// "1GiB". "0" or "off" means no budget (0).
func Parse(s string) (int64, error) {
	t := strings.TrimSpace(strings.ToUpper(s))
	if t == "OFF" {
		return 0, nil
	}
	t = strings.TrimSuffix(strings.TrimSuffix(t, "B"), "I")
	mult := int64(1)
	switch {
	case strings.HasSuffix(t, "K"):
		mult, t = 1<<10, strings.TrimSuffix(t, "K")
	case strings.HasSuffix(t, "M"):
		mult, t = 1<<20, strings.TrimSuffix(t, "M")
	case strings.HasSuffix(t, "G"):
		mult, t = 1<<30, strings.TrimSuffix(t, "G")
	}
	n, err := strconv.ParseInt(strings.TrimSpace(t), 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, errors.New("memory budget " + strconv.Quote(s) + ": want a size such as 768M or 2G, or off")
	}
	return n * mult, nil
}

// FromEnv returns the budget set by GABARIT_MEMORY_BUDGET, or def when it
// is unset.
func FromEnv(def int64) (int64, error) {
	v, ok := os.LookupEnv(EnvVar)
	if !ok || strings.TrimSpace(v) == "" {
		return def, nil
	}
	n, err := Parse(v)
	if err != nil {
		return 0, errors.New(EnvVar + ": " + err.Error())
	}
	return n, nil
}
