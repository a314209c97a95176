package loadtest

import (
	"math"
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// histMaxMicros is the largest recordable value: an hour covers any index
// lag a run can produce; larger values are clamped rather than dropped so
// that they still count as the maximum.
const histMaxMicros = int64(time.Hour / time.Microsecond)

// histogram records durations at microsecond resolution with three
// significant digits. Senders and websocket readers record concurrently
// while the progress line reads percentiles, hence the mutex.
type histogram struct {
	mu sync.Mutex
	h  *hdrhistogram.Histogram
}

func newHistogram() *histogram {
	return newHistogramOf(histMaxMicros, 3)
}

// newHistogramOf records up to maxMicros (larger values are clamped) with
// digits significant digits.
func newHistogramOf(maxMicros int64, digits int) *histogram {
	return &histogram{h: hdrhistogram.New(1, maxMicros, digits)}
}

func (h *histogram) Record(d time.Duration) {
	us := min(max(d.Microseconds(), 0), h.h.HighestTrackableValue())
	h.mu.Lock()
	_ = h.h.RecordValue(us) // cannot fail: the value was clamped into range
	h.mu.Unlock()
}

func (h *histogram) Count() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.h.TotalCount()
}

// Quantile returns the value at q (0..100), or -1 when nothing was recorded
// so callers can tell "no data" from "zero".
func (h *histogram) Quantile(q float64) time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.h.TotalCount() == 0 {
		return -1
	}
	return time.Duration(h.h.ValueAtQuantile(q)) * time.Microsecond
}

// Summary returns every figure the report carries, or nil when nothing was
// recorded (so JSON shows null instead of misleading zeros).
func (h *histogram) Summary() *Latency {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.h.TotalCount() == 0 {
		return nil
	}
	ms := func(us int64) float64 { return roundMS(float64(us) / 1000) }
	return &Latency{
		Count:  h.h.TotalCount(),
		MinMS:  ms(h.h.Min()),
		MeanMS: roundMS(h.h.Mean() / 1000),
		P50MS:  ms(h.h.ValueAtQuantile(50)),
		P90MS:  ms(h.h.ValueAtQuantile(90)),
		P99MS:  ms(h.h.ValueAtQuantile(99)),
		P999MS: ms(h.h.ValueAtQuantile(99.9)),
		MaxMS:  ms(h.h.Max()),
	}
}

// roundMS keeps microsecond precision: more digits would be noise.
func roundMS(v float64) float64 { return math.Round(v*1000) / 1000 }

// Latency is the distribution of one measured duration, in milliseconds.
type Latency struct {
	Count  int64   `json:"count"`
	MinMS  float64 `json:"min_ms"`
	MeanMS float64 `json:"mean_ms"`
	P50MS  float64 `json:"p50_ms"`
	P90MS  float64 `json:"p90_ms"`
	P99MS  float64 `json:"p99_ms"`
	P999MS float64 `json:"p999_ms"`
	MaxMS  float64 `json:"max_ms"`
}
