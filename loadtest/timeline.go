package loadtest

import (
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// timelineMaxMicros bounds an interval's histograms: a minute covers any
// latency worth placing in time; longer ones are clamped, still the max.
const timelineMaxMicros = int64(time.Minute / time.Microsecond)

// timeline splits the measured window into equal intervals by due time and
// keeps each interval's ack and freshness distributions. A run's p99 says
// how bad the tail is, the timeline says what kind it is: spread over the
// window (queueing for the CPU) or gathered in a few intervals (a stall),
// which can then be lined up with what the node and PostgreSQL did then.
// Two significant digits keep an interval's pair of histograms near 40 KB.
type timeline struct {
	start, end time.Time
	every      time.Duration

	mu        sync.Mutex
	intervals []timelineInterval
}

type timelineInterval struct {
	ack, fresh *hdrhistogram.Histogram // nil until the first sample
}

// newTimeline covers window from start in intervals of every; it returns
// nil (records nothing) when every is not positive.
func newTimeline(start time.Time, window, every time.Duration) *timeline {
	if every <= 0 || window <= 0 {
		return nil
	}
	n := int((window + every - 1) / every)
	return &timeline{start: start, end: start.Add(window), every: every, intervals: make([]timelineInterval, n)}
}

func (t *timeline) recordAck(due time.Time, d time.Duration) {
	t.record(due, d, func(iv *timelineInterval) **hdrhistogram.Histogram { return &iv.ack })
}

func (t *timeline) recordFresh(due time.Time, d time.Duration) {
	t.record(due, d, func(iv *timelineInterval) **hdrhistogram.Histogram { return &iv.fresh })
}

func (t *timeline) record(due time.Time, d time.Duration, which func(*timelineInterval) **hdrhistogram.Histogram) {
	if t == nil {
		return
	}
	if due.Before(t.start) || !due.Before(t.end) {
		return
	}
	i := int(due.Sub(t.start) / t.every)
	us := min(max(d.Microseconds(), 0), timelineMaxMicros)
	t.mu.Lock()
	defer t.mu.Unlock()
	if i >= len(t.intervals) {
		return
	}
	h := which(&t.intervals[i])
	if *h == nil {
		*h = hdrhistogram.New(1, timelineMaxMicros, 2)
	}
	_ = (*h).RecordValue(us) // cannot fail: clamped into range
}

// TimelineInterval is one interval of the measured window: the writes due
// in it and their ack and freshness (null when it had none).
type TimelineInterval struct {
	AtS       float64    `json:"at_s"` // its start, seconds into the measured window
	Writes    int64      `json:"writes"`
	Ack       *Quantiles `json:"ack"`
	Freshness *Quantiles `json:"freshness"`
}

// Quantiles is an interval's short summary, two significant digits.
type Quantiles struct {
	P50MS float64 `json:"p50_ms"`
	P99MS float64 `json:"p99_ms"`
	MaxMS float64 `json:"max_ms"`
}

func quantiles(h *hdrhistogram.Histogram) *Quantiles {
	if h == nil || h.TotalCount() == 0 {
		return nil
	}
	ms := func(us int64) float64 { return roundMS(float64(us) / 1000) }
	return &Quantiles{P50MS: ms(h.ValueAtQuantile(50)), P99MS: ms(h.ValueAtQuantile(99)), MaxMS: ms(h.Max())}
}

// intervalsOut is the timeline as the report carries it.
func (t *timeline) intervalsOut() []TimelineInterval {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]TimelineInterval, len(t.intervals))
	for i, iv := range t.intervals {
		out[i] = TimelineInterval{AtS: roundMS((time.Duration(i) * t.every).Seconds()), Ack: quantiles(iv.ack), Freshness: quantiles(iv.fresh)}
		if iv.ack != nil {
			out[i].Writes = iv.ack.TotalCount()
		}
	}
	return out
}
