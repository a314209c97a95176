package loadtest

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestTimelinePlacesSamplesByDueTime(t *testing.T) {
	start := time.Unix(1_700_000_000, 0)
	tl := newTimeline(start, 2500*time.Millisecond, time.Second) // three intervals, the last short
	for i := range 100 {
		due := start.Add(time.Duration(i) * 10 * time.Millisecond) // the first second
		tl.recordAck(due, 2*time.Millisecond)
		tl.recordFresh(due, 3*time.Millisecond)
	}
	// A stall in the third interval; nothing in the second.
	stall := start.Add(2200 * time.Millisecond)
	tl.recordAck(stall, 400*time.Millisecond)
	tl.recordFresh(stall, 450*time.Millisecond)
	// Outside the window: before it, and after it.
	tl.recordAck(start.Add(-time.Millisecond), time.Hour)
	tl.recordAck(start.Add(2500*time.Millisecond), time.Hour)

	out := tl.intervalsOut()
	if len(out) != 3 {
		t.Fatalf("%d intervals, want 3", len(out))
	}
	if out[0].AtS != 0 || out[1].AtS != 1 || out[2].AtS != 2 {
		t.Errorf("starts %v, %v, %v, want 0, 1, 2", out[0].AtS, out[1].AtS, out[2].AtS)
	}
	near := func(got, want float64) bool { return got >= want*0.99 && got <= want*1.01 } // two significant digits
	if out[0].Writes != 100 || !near(out[0].Ack.P99MS, 2) || !near(out[0].Freshness.MaxMS, 3) {
		t.Errorf("first interval = %+v ack %+v fresh %+v, want 100 writes, ack 2 ms, freshness 3 ms", out[0], out[0].Ack, out[0].Freshness)
	}
	if out[1].Writes != 0 || out[1].Ack != nil || out[1].Freshness != nil {
		t.Errorf("empty interval = %+v, want no writes and null figures", out[1])
	}
	if out[2].Writes != 1 || !near(out[2].Freshness.MaxMS, 450) {
		t.Errorf("stalled interval = %+v fresh %+v, want 1 write and freshness ~450 ms", out[2], out[2].Freshness)
	}

	rep := &Report{Timeline: out, TimelineS: 1, Latency: Latencies{Freshness: &Latency{}}}
	want := "freshness p99 per 1s interval: median 3.01ms, worst 451ms (max 451ms) at 2.0s of 2 intervals"
	if got := rep.timelineSummary(); got != want {
		t.Errorf("summary = %q, want %q", got, want)
	}
	var sum bytes.Buffer
	if err := rep.WriteSummary(&sum); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(sum.String(), "timeline    freshness p99 per 1s interval") {
		t.Errorf("the summary lacks the timeline line:\n%s", sum.String())
	}
}

func TestTimelineOff(t *testing.T) {
	tl := newTimeline(time.Now(), 10*time.Second, 0)
	tl.recordAck(time.Now(), time.Millisecond) // a nil timeline records nothing, without failing
	if tl != nil || tl.intervalsOut() != nil {
		t.Fatal("--timeline 0 still keeps a timeline")
	}
	if got := (&Report{}).timelineSummary(); got != "" {
		t.Fatalf("summary without a timeline = %q", got)
	}
}
