package loadgen

import (
	"testing"
	"time"
)

func TestPercentileNearestRank(t *testing.T) {
	t.Parallel()
	// Ten values 1..10 ms: nearest rank is sorted[ceil(p/100*n)-1].
	var ten []time.Duration
	for i := 1; i <= 10; i++ {
		ten = append(ten, time.Duration(i)*time.Millisecond)
	}
	// The textbook example: 15, 20, 35, 40, 50.
	five := []time.Duration{15, 20, 35, 40, 50}

	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"single p50", []time.Duration{7}, 50, 7},
		{"single p99", []time.Duration{7}, 99, 7},
		{"ten p50", ten, 50, 5 * time.Millisecond},
		{"ten p90", ten, 90, 9 * time.Millisecond},
		{"ten p91", ten, 91, 10 * time.Millisecond},
		{"ten p99", ten, 99, 10 * time.Millisecond},
		{"ten p100", ten, 100, 10 * time.Millisecond},
		{"ten p0 is min", ten, 0, 1 * time.Millisecond},
		{"ten p10", ten, 10, 1 * time.Millisecond},
		{"ten p11", ten, 11, 2 * time.Millisecond},
		{"five p5", five, 5, 15},
		{"five p30", five, 30, 20},
		{"five p40", five, 40, 20},
		{"five p50", five, 50, 35},
		{"five p100", five, 100, 50},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("percentile(%v, %v) = %v, want %v", tt.sorted, tt.p, got, tt.want)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	t.Parallel()
	workers := []worker{
		{latencies: []time.Duration{4, 1}, requests: 3, errors: 1},
		{latencies: []time.Duration{3, 2}, requests: 2},
	}
	res := summarize(workers, 2*time.Second)
	if res.Requests != 5 || res.Errors != 1 {
		t.Errorf("requests, errors = %d, %d, want 5, 1", res.Requests, res.Errors)
	}
	if res.Throughput != 2 {
		t.Errorf("throughput = %v, want 2 (4 successes in 2 s)", res.Throughput)
	}
	if res.P50 != 2 || res.P90 != 4 || res.P99 != 4 || res.Max != 4 {
		t.Errorf("p50, p90, p99, max = %v, %v, %v, %v, want 2, 4, 4, 4", res.P50, res.P90, res.P99, res.Max)
	}
	if res.Mean != 2 { // (1+2+3+4)/4 = 2.5, truncated
		t.Errorf("mean = %v, want 2", res.Mean)
	}
}
