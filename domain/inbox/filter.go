// Package inbox is the inbox state as pure, I/O-free code: every summary of
// an inbox's conversations held in ordered indexes, incremental counts, and a
// ring of recent updates for resumable streams. The inbox actor wraps one
// State and is its only caller, so State is not safe for concurrent use.
package inbox

import (
	"errors"
	"fmt"
	"slices"

	"github.com/switchboard-dev/switchboard/domain/conversation"
)

// ErrInvalid marks a bad list query or cursor; the gateway maps it to
// invalid_argument (400).
var ErrInvalid = errors.New("invalid argument")

// List limits, as the API defines them.
const (
	DefaultLimit = 50
	MaxLimit     = 200
)

// Sort orders a conversation list. Every order breaks ties by id ascending
// so that pages are deterministic.
type Sort string

const (
	// SortRecent: newest last_activity_at first (the default).
	SortRecent Sort = "recent"
	// SortOldest: oldest last_activity_at first.
	SortOldest Sort = "oldest"
	// SortLongestWait: oldest waiting_since first; addressed conversations
	// (nil waiting_since) last.
	SortLongestWait Sort = "longest_wait"
	// SortSLADue: soonest sla_due_at first; conversations without one last.
	SortSLADue Sort = "sla_due"
)

// Valid reports whether s is one of the API's sorts.
func (s Sort) Valid() bool {
	switch s {
	case SortRecent, SortOldest, SortLongestWait, SortSLADue:
		return true
	}
	return false
}

// AssigneeNone is the Filter.Assignee value selecting unassigned conversations.
const AssigneeNone = "none"

// Filter selects conversations of an inbox list; Query.Resolve makes one.
// The zero Filter selects every conversation that is not closed.
type Filter struct {
	// Statuses selects these statuses; empty means all but closed.
	Statuses []conversation.Status
	// Addressed, when set, selects only (un)addressed conversations.
	Addressed *bool
	// Assignee: "" any, "none" unassigned, else an agent id. The caller
	// resolves "me" to the agent's id before it gets here.
	Assignee string
	// Channel: "" any.
	Channel conversation.Channel
	// Tag: "" any, else conversations carrying this tag.
	Tag string
}

// Matches reports whether s passes every part of the filter.
func (f Filter) Matches(s conversation.Summary) bool {
	if len(f.Statuses) == 0 {
		if s.Status == conversation.StatusClosed {
			return false
		}
	} else if !slices.Contains(f.Statuses, s.Status) {
		return false
	}
	return f.matchesRest(&s)
}

// matchesRest checks everything but the status, which List already settled
// by choosing which status indexes to walk.
func (f *Filter) matchesRest(s *conversation.Summary) bool {
	if f.Addressed != nil && s.Addressed != *f.Addressed {
		return false
	}
	switch f.Assignee {
	case "":
	case AssigneeNone:
		if assigneeKey(s) != "" {
			return false
		}
	default:
		if assigneeKey(s) != f.Assignee {
			return false
		}
	}
	if f.Channel != "" && s.Channel != f.Channel {
		return false
	}
	if f.Tag != "" && !slices.Contains(s.Tags, f.Tag) {
		return false
	}
	return true
}

// onlyCountable reports whether the counters alone can give the total for
// this filter (no channel or tag, which are not counted per value).
func (f *Filter) onlyCountable() bool { return f.Channel == "" && f.Tag == "" }

// onlyStatuses reports whether the filter selects by status alone.
func (f *Filter) onlyStatuses() bool {
	return f.Addressed == nil && f.Assignee == "" && f.onlyCountable()
}

// statuses returns the statuses to walk, deduplicated, in a fixed order.
func (f *Filter) statuses() []conversation.Status {
	if len(f.Statuses) == 0 {
		return []conversation.Status{conversation.StatusNew, conversation.StatusOpen, conversation.StatusPending}
	}
	out := make([]conversation.Status, 0, len(f.Statuses))
	for _, st := range allStatuses() {
		if slices.Contains(f.Statuses, st) {
			out = append(out, st)
		}
	}
	return out
}

// Query is a list request in typed values: the list query's keys (docs/api.md)
// after the gateway parsed them from a URL or a websocket filter. Resolve
// checks the values; the zero Query is the default list.
type Query struct {
	// Statuses, empty for all but closed; duplicates are ignored.
	Statuses []conversation.Status
	// Addressed, when set, selects only (un)addressed conversations.
	Addressed *bool
	// Assignee: "" any, "none" unassigned, "me" the caller, else an agent id.
	Assignee string
	Channel  conversation.Channel
	Tag      string
	// Sort: "" for SortRecent.
	Sort Sort
	// Limit: 0 for DefaultLimit, else 1..MaxLimit.
	Limit  int
	Cursor string
}

// AssigneeMe is the Query.Assignee value naming the calling agent.
const AssigneeMe = "me"

// Resolve checks q and returns the filter, sort, page size and cursor it
// names. agentID is the caller's agent id, or "" for an account key, which
// cannot ask for assignee=me.
func (q Query) Resolve(agentID string) (Filter, Sort, int, string, error) {
	var f Filter
	for _, st := range q.Statuses {
		if !st.Valid() {
			return Filter{}, "", 0, "", fmt.Errorf("%w: status: unknown value %q", ErrInvalid, st)
		}
		if !slices.Contains(f.Statuses, st) {
			f.Statuses = append(f.Statuses, st)
		}
	}
	f.Addressed = q.Addressed
	switch q.Assignee {
	case AssigneeMe:
		if agentID == "" {
			return Filter{}, "", 0, "", fmt.Errorf("%w: assignee: \"me\" needs an agent token", ErrInvalid)
		}
		f.Assignee = agentID
	default:
		f.Assignee = q.Assignee
	}
	if q.Channel != "" && !q.Channel.Valid() {
		return Filter{}, "", 0, "", fmt.Errorf("%w: channel: unknown value %q", ErrInvalid, q.Channel)
	}
	f.Channel, f.Tag = q.Channel, q.Tag
	sort := SortRecent
	if q.Sort != "" {
		if !q.Sort.Valid() {
			return Filter{}, "", 0, "", fmt.Errorf("%w: sort: unknown value %q", ErrInvalid, q.Sort)
		}
		sort = q.Sort
	}
	limit := DefaultLimit
	if q.Limit != 0 {
		if q.Limit < 1 || q.Limit > MaxLimit {
			return Filter{}, "", 0, "", fmt.Errorf("%w: limit: want an integer in 1..%d, got %d", ErrInvalid, MaxLimit, q.Limit)
		}
		limit = q.Limit
	}
	if q.Cursor != "" {
		// Checked here too so that a bad cursor fails before any page is read.
		c, err := decodeCursor(q.Cursor)
		if err != nil {
			return Filter{}, "", 0, "", err
		}
		if c.sort != sort {
			return Filter{}, "", 0, "", fmt.Errorf("%w: cursor: made for sort %q, not %q", ErrInvalid, c.sort, sort)
		}
	}
	return f, sort, limit, q.Cursor, nil
}
