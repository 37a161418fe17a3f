package membudget

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestAcquireRelease(t *testing.T) {
	t.Parallel()
	b := New(100)
	r1, err := b.Acquire(context.Background(), 60)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := b.Acquire(context.Background(), 40)
	if err != nil {
		t.Fatal(err)
	}
	if got := b.InUse(); got != 100 {
		t.Errorf("InUse %d, want 100", got)
	}
	r1()
	r1() // a second call changes nothing
	if got := b.InUse(); got != 40 {
		t.Errorf("InUse after release %d, want 40", got)
	}
	r2()
	if got, hw := b.InUse(), b.HighWater(); got != 0 || hw != 100 {
		t.Errorf("InUse %d, HighWater %d, want 0 and 100", got, hw)
	}
}

func TestTooBigRefusedAtOnce(t *testing.T) {
	t.Parallel()
	b := New(100)
	hold, _ := b.Acquire(context.Background(), 100) // full: a wait would block forever
	defer hold()
	_, err := b.Acquire(context.Background(), 101)
	var tb *TooBigError
	if !errors.As(err, &tb) || !errors.Is(err, ErrOverBudget) || tb.Need != 101 || tb.Size != 100 {
		t.Fatalf("err %v, want a *TooBigError of 101 over 100", err)
	}
}

func TestWaitsThenGranted(t *testing.T) {
	t.Parallel()
	b := New(100)
	hold, _ := b.Acquire(context.Background(), 80)
	got := make(chan error, 1)
	go func() {
		r, err := b.Acquire(context.Background(), 50)
		if err == nil {
			defer r()
		}
		got <- err
	}()
	// The waiter cannot be granted while 80 are held.
	waitQueued(t, b, 1)
	select {
	case err := <-got:
		t.Fatalf("granted while the budget was held: %v", err)
	default:
	}
	hold()
	if err := <-got; err != nil {
		t.Fatal(err)
	}
}

func TestBusyWhenContextEnds(t *testing.T) {
	t.Parallel()
	b := New(100)
	hold, _ := b.Acquire(context.Background(), 100)
	defer hold()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := b.Acquire(ctx, 10)
	var be *BusyError
	if !errors.As(err, &be) || !errors.Is(err, ErrOverBudget) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want a *BusyError wrapping context.Canceled", err)
	}
	_, err = b.Acquire(WithMaxWait(context.Background(), time.Millisecond), 10)
	if !errors.As(err, &be) || be.Need != 10 {
		t.Fatalf("err %v, want a *BusyError when the wait runs out", err)
	}
	if got := b.InUse(); got != 100 {
		t.Errorf("InUse %d after refusals, want 100", got)
	}
	if n := queued(b); n != 0 {
		t.Errorf("%d waiters left in the queue", n)
	}
}

// TestFirstComeFirstServed checks that a heavy request at the head of the
// queue is not overtaken by lighter ones that would fit.
func TestFirstComeFirstServed(t *testing.T) {
	t.Parallel()
	b := New(100)
	hold, _ := b.Acquire(context.Background(), 60)
	heavy := make(chan func(), 1)
	go func() {
		r, _ := b.Acquire(context.Background(), 90)
		heavy <- r
	}()
	waitQueued(t, b, 1)
	light := make(chan func(), 1)
	go func() {
		r, _ := b.Acquire(context.Background(), 20) // fits in the 40 free, but queues behind
		light <- r
	}()
	waitQueued(t, b, 2)
	hold()
	r := <-heavy
	select {
	case <-light:
		t.Fatal("the light request was granted beside the heavy one: 110 would be held")
	default:
	}
	r()
	(<-light)()
	if hw := b.HighWater(); hw > 100 {
		t.Errorf("HighWater %d over the budget", hw)
	}
}

// TestNeverOverBudget runs many goroutines acquiring random amounts, some
// giving up, some panicking after acquiring (released by their defer), and
// checks that what is held never exceeds the budget and all is given back.
func TestNeverOverBudget(t *testing.T) {
	t.Parallel()
	const size = 1000
	b := New(size)
	var held, peak atomic.Int64
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { _ = recover() }() // the panics below are the test's
			n := int64(1 + (i*37)%size)
			ctx := context.Background()
			if i%5 == 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithCancel(ctx)
				if i%10 == 0 {
					cancel()
				}
				defer cancel()
			}
			release, err := b.Acquire(ctx, n)
			if err != nil {
				return
			}
			defer release()
			now := held.Add(n)
			for {
				p := peak.Load()
				if now <= p || peak.CompareAndSwap(p, now) {
					break
				}
			}
			if i%7 == 0 {
				held.Add(-n)
				panic("analysis failed")
			}
			held.Add(-n)
		}()
	}
	wg.Wait()
	if p := peak.Load(); p > size {
		t.Errorf("held %d at once, over the budget of %d", p, size)
	}
	if hw := b.HighWater(); hw > size || hw < peak.Load() {
		t.Errorf("HighWater %d, peak seen %d, budget %d", hw, peak.Load(), size)
	}
	if got := b.InUse(); got != 0 {
		t.Errorf("InUse %d after every holder returned (panics included), want 0", got)
	}
}

func TestNilBudget(t *testing.T) {
	t.Parallel()
	var b *Budget
	r, err := b.Acquire(context.Background(), 1<<40)
	if err != nil {
		t.Fatal(err)
	}
	r()
	if b.InUse() != 0 || b.Size() != 0 || b.HighWater() != 0 {
		t.Error("a nil budget reports something held")
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   string
		want int64
		bad  bool
	}{
		{in: "768M", want: 768 << 20},
		{in: "768MiB", want: 768 << 20},
		{in: "1g", want: 1 << 30},
		{in: "2GB", want: 2 << 30},
		{in: "512k", want: 512 << 10},
		{in: "123456", want: 123456},
		{in: "off", want: 0},
		{in: "0", want: 0},
		{in: "-1G", bad: true},
		{in: "lots", bad: true},
		{in: "", bad: true},
	} {
		got, err := Parse(tt.in)
		if (err != nil) != tt.bad || got != tt.want {
			t.Errorf("Parse(%q) = %d, %v; want %d, bad=%v", tt.in, got, err, tt.want, tt.bad)
		}
	}
}

func TestFromEnv(t *testing.T) {
	t.Setenv(EnvVar, "256M")
	if got, err := FromEnv(Default); err != nil || got != 256<<20 {
		t.Errorf("FromEnv = %d, %v; want 256 MiB", got, err)
	}
	t.Setenv(EnvVar, "")
	if got, err := FromEnv(Default); err != nil || got != Default {
		t.Errorf("FromEnv with it empty = %d, %v; want the default", got, err)
	}
	t.Setenv(EnvVar, "much")
	if _, err := FromEnv(Default); err == nil {
		t.Error("FromEnv accepted \"much\"")
	}
}

// waitQueued waits until n requests wait in b's queue.
func waitQueued(t *testing.T, b *Budget, n int) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.waiters.Len() < n {
		b.queued.Wait()
	}
}

// queued is how many requests wait in b's queue.
func queued(b *Budget) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.waiters.Len()
}
