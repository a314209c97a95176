package loadtest

import (
	"testing"
	"time"
)

// Update frames are read without decoding them (subscriber.update): the
// fields still land where a decoded frame put them, another inbox's frame
// is ignored, and a frame missing what the tracker needs is an error.
func TestSubscriberReadsUpdateFrames(t *testing.T) {
	r := &runner{errKinds: map[string]int64{}, firstErr: map[string]string{}, tr: newTracker(func(time.Duration, sendTag) {})}
	s := &subscriber{id: r.tr.addSubscriber("ib_1"), inbox: "ib_1", r: r, ready: make(chan struct{})}
	at := time.Now()
	for _, f := range []string{
		`{"type":"subscribed","inbox_id":"ib_1","epoch":"e1","seq":0}`,
		`{"type":"snapshot","inbox_id":"ib_1","epoch":"e1","seq":0,"conversations":[],"total":0}`,
		`{"type":"update","inbox_id":"ib_1","epoch":"e1","seq":1,"conversation":{"id":"cv_1","status":"new","version":3},"counts":{}}`,
		`{"type":"update","inbox_id":"ib_2","epoch":"e9","seq":7,"conversation":{"id":"cv_9","version":1}}`,
		// the same version again with other contents: a forked history
		`{"type":"update","inbox_id":"ib_1","epoch":"e1","seq":2,"conversation":{"id":"cv_1","status":"open","version":3}}`,
		`{"type":"update","inbox_id":"ib_1","epoch":"e1","seq":3,"conversation":{"id":"cv_1"}}`,
	} {
		if err := s.handle([]byte(f), at); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
	if got := r.tr.subs[s.id].conv("cv_1").max; got != 3 {
		t.Errorf("cv_1 at version %d, want 3", got)
	}
	if _, seen := r.tr.subs[s.id].convs["cv_9"]; seen {
		t.Error("another inbox's update was applied")
	}
	if r.tr.c.Duplicates != 1 {
		t.Errorf("%d duplicates, want 1 (version 3 with other contents)", r.tr.c.Duplicates)
	}
	if r.errKinds["ws_frame"] != 1 {
		t.Errorf("%d frame errors, want 1 (the update without a version)", r.errKinds["ws_frame"])
	}
}
