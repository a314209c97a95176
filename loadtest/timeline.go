package loadtest

import (
	"sync"
	"time"
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

	mu        sync.Mutex // guards the intervals' lazily made histograms
	intervals []timelineInterval
}

type timelineInterval struct {
	ack, fresh *histogram // nil until the first sample
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
	t.record(due, d, func(iv *timelineInterval) **histogram { return &iv.ack })
}

func (t *timeline) recordFresh(due time.Time, d time.Duration) {
	t.record(due, d, func(iv *timelineInterval) **histogram { return &iv.fresh })
}

func (t *timeline) record(due time.Time, d time.Duration, which func(*timelineInterval) **histogram) {
	if t == nil || due.Before(t.start) || !due.Before(t.end) {
		return
	}
	t.mu.Lock()
	h := which(&t.intervals[int(due.Sub(t.start)/t.every)])
	if *h == nil {
		*h = newHistogramOf(timelineMaxMicros, 2)
	}
	hist := *h
	t.mu.Unlock()
	hist.Record(d)
}

// TimelineInterval is one interval of the measured window: the writes due
// in it and their ack and freshness (null when it had none), to two
// significant digits.
type TimelineInterval struct {
	AtS       float64  `json:"at_s"` // its start, seconds into the measured window
	Writes    int64    `json:"writes"`
	Ack       *Latency `json:"ack"`
	Freshness *Latency `json:"freshness"`
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
		out[i].AtS = roundMS((time.Duration(i) * t.every).Seconds())
		if iv.ack != nil {
			out[i].Ack = iv.ack.Summary()
			out[i].Writes = out[i].Ack.Count
		}
		if iv.fresh != nil {
			out[i].Freshness = iv.fresh.Summary()
		}
	}
	return out
}
