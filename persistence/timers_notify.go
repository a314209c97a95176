package persistence

import (
	"strconv"
	"time"
)

// TimersChannel is the NOTIFY channel on which a commit that arms a due
// time soon announces it (payload: the earliest such due_at in Unix
// milliseconds), so the timer scanner, which sleeps until the next due time
// it knows of, wakes for a sooner one at once instead of at its next poll.
const TimersChannel = "timers_armed"

// TimersHorizon is how soon a due time must be for its commit to announce
// it. Later ones are not announced: the scanner re-reads its next due time
// at least this often (its longest wait may not exceed this), so it learns
// of them before they are due, and a busy inbox with long timers does not
// wake it on every commit.
const TimersHorizon = 5 * time.Second

// notifyTimersSQL announces a due time; $1 is TimersPayload's text.
const notifyTimersSQL = `SELECT pg_notify('` + TimersChannel + `', $1)`

// TimersPayload encodes a due time for TimersChannel.
func TimersPayload(due time.Time) string { return strconv.FormatInt(due.UnixMilli(), 10) }

// ParseTimersPayload decodes a TimersChannel payload.
func ParseTimersPayload(p string) (time.Time, bool) {
	ms, err := strconv.ParseInt(p, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.UnixMilli(ms), true
}

// soonDue is the earliest of the batch's due times within TimersHorizon of
// now, if any: what the batch's commit announces on TimersChannel.
func soonDue(batch []*request, now time.Time) (time.Time, bool) {
	var soonest time.Time
	found := false
	limit := now.Add(TimersHorizon)
	for _, r := range batch {
		if d := r.a.DueAt; d != nil && d.Before(limit) && (!found || d.Before(soonest)) {
			soonest, found = *d, true
		}
	}
	return soonest, found
}
