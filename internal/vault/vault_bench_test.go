package vault

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkMatch measures one Match against n objection entries of
// dimension 512 while nothing changes: the change counter's read and the
// dot products. BenchmarkMatch/reload measures a Match after another
// instance's write: the reload and decryption of every entry.
func BenchmarkMatch(b *testing.B) {
	ctx := context.Background()
	const dim = 512
	for _, n := range []int{100, 1000} {
		ins := openInstances(b, 2)
		v, w := open(b, ins[0]), open(b, ins[1])
		ts := make([][]float32, n)
		for i := range ts {
			ts[i] = unit(dim, i%dim, float64(i)/float64(n))
		}
		if _, err := w.Add(ctx, Objection, 1, model, ts); err != nil {
			b.Fatal(err)
		}
		probe := unit(dim, 7, 1.3)
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Match(ctx, model, probe, []Kind{Objection}, 0.99); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("entries=%d/reload", n), func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				if _, err := w.RemoveRequest(ctx, 2, Objection); err != nil { // bumps the counter only
					b.Fatal(err)
				}
				b.StartTimer()
				if _, err := v.Match(ctx, model, probe, []Kind{Objection}, 0.99); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
