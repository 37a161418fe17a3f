package pipeline

import (
	"context"
	"sync"
)

// ForEach calls fn for every index in [0, n) on up to workers goroutines and
// then emits the results in index order through emit, as soon as each one
// and all before it are done. It stops early when ctx is cancelled.
func ForEach[T any](ctx context.Context, n, workers int, fn func(ctx context.Context, i int) T, emit func(i int, v T)) {
	workers = max(1, min(workers, n))
	jobs := make(chan int)
	type done struct {
		i int
		v T
	}
	results := make(chan done, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				results <- done{i, fn(ctx, i)}
			}
		}()
	}
	go func() {
		defer close(jobs)
		for i := range n {
			// Checked first: select alone picks at random between a ready
			// worker and a cancelled context.
			if ctx.Err() != nil {
				return
			}
			select {
			case jobs <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() {
		wg.Wait()
		close(results)
	}()
	pending := map[int]T{}
	next := 0
	for r := range results {
		pending[r.i] = r.v
		for {
			v, ok := pending[next]
			if !ok {
				break
			}
			delete(pending, next)
			emit(next, v)
			next++
		}
	}
}
