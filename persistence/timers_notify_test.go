package persistence

import (
	"context"
	"testing"
	"time"
)

// TestWriterAnnouncesSoonDueTimes: a commit arming a due time within
// TimersHorizon announces the earliest on TimersChannel; one arming a
// later due time, or none, does not.
func TestWriterAnnouncesSoonDueTimes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := newStore(t)
	conn := listenOn(t, s, TimersChannel)
	// timersAfter appends one event due at due and returns what
	// TimersChannel heard from its commit: the listener's own "end",
	// notified once the writer is closed (its wake-ups sent: a commit's
	// callers are answered before them), closes the list.
	timersAfter := func(id string, due *time.Time) []string {
		t.Helper()
		w := NewWriter(s.Pool(), WriterConfig{}, nil)
		a := testAppend(id, claim(t, s, id), 1, nil)
		a.DueAt = due
		if err := w.Append(ctx, a); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, notifyTimersSQL, "end"); err != nil {
			t.Fatal(err)
		}
		var heard []string
		for {
			n, err := conn.Conn().WaitForNotification(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if n.Payload == "end" {
				return heard
			}
			heard = append(heard, n.Payload)
		}
	}
	soon := time.Now().Add(time.Second).Truncate(time.Millisecond)
	got := timersAfter("cv_soon", &soon)
	if len(got) != 1 {
		t.Fatalf("due in a second: heard %v, want one announcement", got)
	}
	if at, ok := ParseTimersPayload(got[0]); !ok || !at.Equal(soon) {
		t.Fatalf("announced %q, want %v", got[0], soon)
	}
	late := time.Now().Add(TimersHorizon + time.Minute)
	if got := timersAfter("cv_late", &late); len(got) != 0 {
		t.Fatalf("due beyond the horizon: heard %v", got)
	}
	if got := timersAfter("cv_none", nil); len(got) != 0 {
		t.Fatalf("nothing armed: heard %v", got)
	}
}
