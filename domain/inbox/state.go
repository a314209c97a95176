package inbox

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/google/btree"

	"github.com/switchboard-dev/switchboard/domain/conversation"
)

// Config sizes the memory an inbox holds. Zero values take the defaults.
type Config struct {
	// ClosedKept is how many closed conversations stay in memory (the most
	// recently active); older ones are only counted. Default 5000.
	ClosedKept int
	// RingSize is how many recent updates are kept for resume. Default 4096.
	RingSize int
}

func (c Config) withDefaults() Config {
	if c.ClosedKept <= 0 {
		c.ClosedKept = 5000
	}
	if c.RingSize <= 0 {
		c.RingSize = 4096
	}
	return c
}

// Page is one page of a conversation list.
type Page struct {
	Conversations []conversation.Summary `json:"conversations"`
	// NextCursor continues the list; "" at the end.
	NextCursor string `json:"next_cursor"`
	// Total is how many conversations match the filter now, closed ones no
	// longer held in memory included: counted with the rows of the read
	// model the list read (ClosedRows.Count) when the filter has more than
	// statuses.
	Total int `json:"total"`
}

// Counts are the inbox's badge numbers. Unaddressed, Unassigned, Mine and
// MineUnaddressed count only conversations that are not closed.
type Counts struct {
	Open            int `json:"open"`
	New             int `json:"new"`
	Pending         int `json:"pending"`
	Closed          int `json:"closed"`
	Unaddressed     int `json:"unaddressed"`
	Unassigned      int `json:"unassigned"`
	Mine            int `json:"mine"`
	MineUnaddressed int `json:"mine_unaddressed"`
	// SLABreached counts conversations, not closed, past their first-response SLA.
	SLABreached int `json:"sla_breached"`
}

// Update is one change the inbox emits: Seq grows by exactly 1 per update.
type Update struct {
	Seq     int64                `json:"seq"`
	Summary conversation.Summary `json:"conversation"`
}

// Status indexes are arrays indexed by statusIdx, so that a status lookup on
// the hot path is a switch rather than a map access.
const nStatus = 4

func allStatuses() [nStatus]conversation.Status {
	return [nStatus]conversation.Status{
		conversation.StatusNew, conversation.StatusOpen, conversation.StatusPending, conversation.StatusClosed,
	}
}

func statusIdx(s conversation.Status) int {
	switch s {
	case conversation.StatusNew:
		return 0
	case conversation.StatusOpen:
		return 1
	case conversation.StatusPending:
		return 2
	case conversation.StatusClosed:
		return 3
	}
	return -1
}

const closedIdx = 3

// noWait is the wait key of an addressed conversation: larger than any real
// time, so that longest_wait puts them last without a special case.
const noWait = math.MaxInt64

// entry is one held conversation. Each index holds it with its key copied
// (item), so it changes only through State.update, which moves it in every
// index whose key changed.
type entry struct {
	sum      conversation.Summary // private deep copy, never handed out
	at       int64                // last_activity_at in Unix ns, clamped
	wait     int64                // waiting_since in Unix ns, or noWait
	sla      int64                // sla_due_at in Unix ns, or noWait
	assignee string               // "" when unassigned
	seq      int64                // inbox seq of its last change; 0 if loaded
	// moved is, per sort (sorts' order), the inbox seq at which it last
	// moved in that order: its key changed, or it came into memory. A
	// change that moves it in no order (tags, assignment, status, unread),
	// or in another order than a page's (addressing moves the wait and
	// SLA orders, not the recent one), leaves the page's cursor valid for it.
	moved [len(sorts)]int64
}

func (e *entry) key(s Sort) int64 {
	switch s {
	case SortLongestWait:
		return e.wait
	case SortSLADue:
		return e.sla
	}
	return e.at
}

// nanos clamps to the range UnixNano can express (years 1678..2262), keeping
// MaxInt64 free for noWait; the zero time sorts as the oldest.
func nanos(t time.Time) int64 {
	const lim = math.MaxInt64 / int64(time.Second)
	switch sec := t.Unix(); {
	case sec <= -lim:
		return math.MinInt64
	case sec >= lim:
		return math.MaxInt64 - 1
	}
	return t.UnixNano()
}

func assigneeKey(s *conversation.Summary) string {
	if s.AssigneeID == nil {
		return ""
	}
	return *s.AssigneeID
}

// cloneSummary deep-copies everything a caller could mutate through a
// Summary (pointers and the Tags slice), so held state stays private.
func cloneSummary(s conversation.Summary) conversation.Summary {
	c := s
	if s.AssigneeID != nil {
		v := *s.AssigneeID
		c.AssigneeID = &v
	}
	if s.Tags != nil {
		c.Tags = slices.Clone(s.Tags)
	}
	if s.LastMessage != nil {
		v := *s.LastMessage
		c.LastMessage = &v
	}
	if s.WaitingSince != nil {
		v := *s.WaitingSince
		c.WaitingSince = &v
	}
	if s.ActiveCall != nil {
		v := *s.ActiveCall
		c.ActiveCall = &v
	}
	c.SnoozeUntil, c.SLADueAt = cloneTime(s.SnoozeUntil), cloneTime(s.SLADueAt)
	return c
}

func cloneTime(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := *t
	return &v
}

func newEntry(sum conversation.Summary, seq int64) *entry {
	e := new(entry)
	e.set(&sum, seq)
	return e
}

// set makes e hold sum as changed at seq.
func (e *entry) set(sum *conversation.Summary, seq int64) {
	*e = entry{sum: cloneSummary(*sum), at: nanos(sum.LastActivityAt), wait: noWait, sla: noWait, seq: seq}
	for k := range e.moved {
		e.moved[k] = seq
	}
	if sum.WaitingSince != nil {
		e.wait = nanos(*sum.WaitingSince)
	}
	if sum.SLADueAt != nil {
		e.sla = nanos(*sum.SLADueAt)
	}
	e.assignee = assigneeKey(&e.sum)
	if e.assignee == "" {
		// An empty assignee means "cleared" in a Change; treat it as nil so
		// the unassigned count and the "none" filter agree.
		e.sum.AssigneeID = nil
	}
}

// item is an entry's place in one index, its sort key copied in: a search
// compares within a tree node's own memory, following the entry's pointer
// only on a tie (an inbox's Apply was ~6% of a node's CPU at ingest, most of
// it waiting on those loads).
type item struct {
	key int64 // the entry's key in this index, ordered ascending
	e   *entry
}

// lessItem is every index's order: key ascending, ties by id ascending.
func lessItem(a, b item) bool {
	if a.key != b.key {
		return a.key < b.key
	}
	return a.e.sum.ID < b.e.sum.ID
}

// indexKey is e's key in the index of sort s. Recent is last activity
// descending: its bits inverted (^x = -x-1, which cannot overflow) order
// ascending.
func indexKey(s Sort, e *entry) int64 {
	switch s {
	case SortOldest:
		return e.at
	case SortLongestWait:
		return e.wait
	case SortSLADue:
		return e.sla
	}
	return ^e.at
}

// cursorItem is where a page that ended at a cursor's (key, id) resumes.
func cursorItem(s Sort, key int64, id string) item {
	if s == SortRecent {
		key = ^key
	}
	return item{key, &entry{sum: conversation.Summary{ID: id}}}
}

// btreeDegree: 32 keeps nodes within a few cache lines of pointers while
// keeping the tree shallow (about 4 levels at 100k).
const btreeDegree = 32

// statusIndex orders the conversations of one status by each sort, so a
// page is a walk from the cursor rather than a sort of the whole inbox.
type statusIndex [len(sorts)]*btree.BTreeG[item]

// sorts are the indexes' sorts, in statusIndex's order.
var sorts = [...]Sort{SortRecent, SortOldest, SortLongestWait, SortSLADue}

func newStatusIndex() statusIndex {
	var x statusIndex
	for i := range x {
		x[i] = btree.NewG(btreeDegree, lessItem)
	}
	return x
}

// tree is the index of sort s; recent for any other.
func (x *statusIndex) tree(s Sort) *btree.BTreeG[item] {
	return x[sortIndex(s)]
}

// sortIndex is s's position in sorts (and statusIndex, entry.moved);
// recent's for any other.
func sortIndex(s Sort) int { return max(slices.Index(sorts[:], s), 0) }

// pair counts all, unaddressed and SLA-breached conversations of one group.
type pair struct{ all, unaddressed, breached int }

func (p *pair) add(e *entry, d int) {
	p.all += d
	if !e.sum.Addressed {
		p.unaddressed += d
	}
	if e.sum.SLABreached {
		p.breached += d
	}
}

// counter holds the counts of one status, per assignee too ("" =
// unassigned), so that counts and most totals never scan.
type counter struct {
	pair
	byAssignee map[string]pair
}

func (c *counter) add(e *entry, d int) {
	c.pair.add(e, d)
	p := c.byAssignee[e.assignee]
	p.add(e, d)
	if p.all == 0 {
		// Keeps the map bounded by the assignees that hold something.
		delete(c.byAssignee, e.assignee)
	} else {
		c.byAssignee[e.assignee] = p
	}
}

// State is one inbox: its held conversations, indexes, counts, epoch, seq
// and the ring of recent updates. Not safe for concurrent use: the inbox
// actor serializes every call.
type State struct {
	inboxID string
	epoch   string
	cfg     Config

	seq  int64
	byID map[string]*entry
	idx  [nStatus]statusIndex
	cnt  [nStatus]counter
	// closedNotHeld counts closed conversations that exist but are not in
	// memory: not loaded at activation, or evicted since.
	closedNotHeld int
	// evicted remembers the conversations this activation changed and then
	// evicted, by which the read model's rows of them are judged
	// (readmodel.go).
	evicted evictions

	// ring is a circular buffer of the last cfg.RingSize updates; the newest
	// has seq s.seq.
	ring     []Update
	ringHead int // index of the oldest update
	ringLen  int
}

// New returns an empty inbox state for one activation; epoch names it.
func New(inboxID, epoch string, cfg Config) *State {
	s := &State{inboxID: inboxID, epoch: epoch, cfg: cfg.withDefaults()}
	s.reset()
	return s
}

func (s *State) reset() {
	s.seq = 0
	s.byID = make(map[string]*entry)
	for i := range s.idx {
		s.idx[i] = newStatusIndex()
		s.cnt[i] = counter{byAssignee: make(map[string]pair)}
	}
	s.closedNotHeld = 0
	s.evicted = evictions{}
	// Allocated lazily in push: an inbox that never changes keeps no ring.
	s.ring = nil
	s.ringHead, s.ringLen = 0, 0
}

// Load replaces the state with what the read model holds: every active
// conversation, the most recent closed ones, and how many closed ones exist
// in all. It starts the stream afresh (seq 0, empty ring); the epoch stays.
func (s *State) Load(active, closedRecent []conversation.Summary, closedTotal int) {
	s.reset()
	for _, list := range [][]conversation.Summary{active, closedRecent} {
		for i := range list {
			sum := &list[i]
			if !s.accepts(sum) {
				continue
			}
			if old := s.byID[sum.ID]; old != nil {
				if sum.Version <= old.sum.Version {
					continue
				}
				s.remove(old)
			}
			s.insert(newEntry(*sum, 0))
		}
	}
	s.evictClosed()
	s.closedNotHeld = max(0, closedTotal-s.cnt[closedIdx].all)
}

// accepts rejects what cannot be indexed or belongs to another inbox; a
// summary of another inbox reaching this one is a routing bug, and holding it
// would leak it across tenants.
func (s *State) accepts(sum *conversation.Summary) bool {
	if sum.ID == "" || statusIdx(sum.Status) < 0 {
		return false
	}
	return s.inboxID == "" || sum.InboxID == "" || sum.InboxID == s.inboxID
}

func (s *State) insert(e *entry) {
	i := statusIdx(e.sum.Status)
	for k, t := range s.idx[i] {
		t.ReplaceOrInsert(item{indexKey(sorts[k], e), e})
	}
	s.cnt[i].add(e, 1)
	s.byID[e.sum.ID] = e
	s.evicted.forget(e.sum.ID)
}

func (s *State) remove(e *entry) {
	i := statusIdx(e.sum.Status)
	for k, t := range s.idx[i] {
		t.Delete(item{indexKey(sorts[k], e), e})
	}
	s.cnt[i].add(e, -1)
	delete(s.byID, e.sum.ID)
}

// update changes a held entry in place to sum, whose status is in the
// same index: only the indexes whose key moved are touched (an inbound
// message to a waiting conversation moves its activity, not its wait or
// its SLA).
func (s *State) update(e *entry, sum *conversation.Summary, seq int64) {
	i := statusIdx(e.sum.Status)
	var before [len(sorts)]int64
	for k, so := range sorts {
		before[k] = indexKey(so, e)
	}
	moved := e.moved
	s.cnt[i].add(e, -1)
	e.set(sum, seq)
	s.cnt[i].add(e, 1)
	for k, t := range s.idx[i] {
		if after := indexKey(sorts[k], e); after != before[k] {
			t.Delete(item{before[k], e})
			t.ReplaceOrInsert(item{after, e})
		} else {
			e.moved[k] = moved[k]
		}
	}
}

// keepMoved gives e, which replaces old (a status change), old's moved seq
// in every order where its key is the same.
func keepMoved(e, old *entry) {
	for k, so := range sorts {
		if indexKey(so, e) == indexKey(so, old) {
			e.moved[k] = old.moved[k]
		}
	}
}

// evictClosed drops the least recently active closed conversations beyond
// ClosedKept; they stay counted in Closed through closedNotHeld.
func (s *State) evictClosed() {
	x := &s.idx[closedIdx]
	oldest := x.tree(SortOldest)
	for oldest.Len() > s.cfg.ClosedKept {
		it, _ := oldest.Min()
		s.remove(it.e)
		s.closedNotHeld++
		s.evicted.remember(it.e, s.seq, s.cfg.RingSize)
	}
}

// Apply takes a conversation's newest summary. It applies it only when its
// version is higher than the one held (stale never overwrites fresh,
// invariant 5), then emits an update with the next seq and keeps it in the
// ring. It returns false, changing nothing, for a stale, duplicate or
// foreign summary.
//
// was is the conversation's status before the change(s) sum carries, as its
// sender knows it ("" for a new conversation). It matters only for a
// conversation that is not held: one that was closed is counted in
// closedNotHeld (not loaded, or evicted) and moves from there into memory,
// which keeps Closed exact when an old closed conversation reopens. The
// version alone cannot tell: a conversation whose version 1 never reached
// this inbox arrives at version 2 without ever having been counted. A stale
// summary of an evicted conversation is recognized by the eviction's record
// when this activation changed it before (readmodel.go), not otherwise.
func (s *State) Apply(sum conversation.Summary, was conversation.Status) (Update, bool) {
	if !s.accepts(&sum) {
		return Update{}, false
	}
	e := s.byID[sum.ID]
	switch {
	case e != nil && sum.Version <= e.sum.Version:
		return Update{}, false
	case e == nil && sum.Version <= s.evicted.byID[sum.ID].version:
		// Evicted at a newer version: a late or repeated summary.
		return Update{}, false
	case e != nil && statusIdx(e.sum.Status) == statusIdx(sum.Status):
		s.seq++
		s.update(e, &sum, s.seq)
	default:
		old := e
		if e != nil {
			s.remove(e)
		} else if was == conversation.StatusClosed && s.closedNotHeld > 0 {
			s.closedNotHeld--
		}
		s.seq++
		e = newEntry(sum, s.seq)
		if old != nil {
			keepMoved(e, old)
		}
		s.insert(e)
	}
	u := Update{Seq: s.seq, Summary: e.sum}
	s.push(u)
	if e.sum.Status == conversation.StatusClosed {
		s.evictClosed()
	}
	u.Summary = cloneSummary(u.Summary)
	return u, true
}

// Reconcile catches a live state up with the read model. rows are the
// newest versions, where newer than what the state holds (HeldVersions), of
// every conversation of the inbox that is not closed or that the state
// holds, read in one snapshot with closedTotal, the number of closed ones,
// and after every summary the state has applied was committed (more rows
// do no harm: one not newer is skipped). Each is applied as Apply would,
// emitting updates in this epoch's stream; the count of closed
// conversations not held is then set from closedTotal.
//
// It repairs summaries that never arrived: their sender's node died between
// the commit and the delivery. Their status before the change is unknown
// (a row is only the newest version), which is why the count is taken from
// the snapshot rather than kept by Apply's was.
func (s *State) Reconcile(rows []conversation.Summary, closedTotal int) []Update {
	var out []Update
	for i := range rows {
		if u, ok := s.Apply(rows[i], ""); ok {
			out = append(out, u)
		}
	}
	s.closedNotHeld = max(0, closedTotal-s.cnt[closedIdx].all)
	return out
}

// HeldVersions are the conversations the state holds in memory, with the
// version of each.
func (s *State) HeldVersions() map[string]int64 {
	out := make(map[string]int64, len(s.byID))
	for id, e := range s.byID {
		out[id] = e.sum.Version
	}
	return out
}

func (s *State) push(u Update) {
	if s.ring == nil {
		s.ring = make([]Update, s.cfg.RingSize)
	}
	if s.ringLen < len(s.ring) {
		s.ring[(s.ringHead+s.ringLen)%len(s.ring)] = u
		s.ringLen++
		return
	}
	s.ring[s.ringHead] = u
	s.ringHead = (s.ringHead + 1) % len(s.ring)
}

// Since returns the updates with Seq > seq, oldest first, when the ring still
// holds every one of them. ok is false when it does not (the gap is older
// than the ring, or seq is ahead of this state): the caller sends a snapshot.
// Checking the epoch is the caller's part.
func (s *State) Since(seq int64) ([]Update, bool) {
	if seq < 0 || seq > s.seq {
		return nil, false
	}
	missing := s.seq - seq
	if missing > int64(s.ringLen) {
		return nil, false
	}
	out := make([]Update, 0, missing)
	for i := s.ringLen - int(missing); i < s.ringLen; i++ {
		u := s.ring[(s.ringHead+i)%len(s.ring)]
		u.Summary = cloneSummary(u.Summary)
		out = append(out, u)
	}
	return out, true
}

// Get returns a held conversation.
func (s *State) Get(id string) (conversation.Summary, bool) {
	e := s.byID[id]
	if e == nil {
		return conversation.Summary{}, false
	}
	return cloneSummary(e.sum), true
}

// Epoch names this activation's stream.
func (s *State) Epoch() string { return s.epoch }

// Seq is the seq of the last update emitted (0 before any).
func (s *State) Seq() int64 { return s.seq }

// Len is how many conversations are held in memory.
func (s *State) Len() int { return len(s.byID) }

// Counts returns the badge numbers; agentID ("" for none) selects mine.
// O(statuses): everything is maintained by Apply.
func (s *State) Counts(agentID string) Counts {
	c := Counts{
		New:     s.cnt[0].all,
		Open:    s.cnt[1].all,
		Pending: s.cnt[2].all,
		Closed:  s.cnt[closedIdx].all + s.closedNotHeld,
	}
	for i := range closedIdx {
		k := &s.cnt[i]
		c.Unaddressed += k.unaddressed
		c.SLABreached += k.breached
		c.Unassigned += k.byAssignee[""].all
		if agentID != "" {
			m := k.byAssignee[agentID]
			c.Mine += m.all
			c.MineUnaddressed += m.unaddressed
		}
	}
	return c
}

// List returns one page of the conversations matching f in the given order.
// limit is clamped to 1..MaxLimit (0 means DefaultLimit); sort "" means
// recent. A cursor that does not decode or was made for another sort is
// ErrInvalid. See cursor for the semantics of paging under changes.
//
// Cost: each requested status index is walked from the cursor, applying the
// rest of the filter while walking, until limit+1 matches are found; the
// walks are then merged. That is O(k·(page + skipped) + k·log n) for k
// statuses, where skipped counts the conversations a selective filter
// passes over. Total comes from the counters in O(k) unless the filter
// names a channel or tag, which needs one scan of the requested statuses.
//
// closed, when the list asks for closed conversations and some are not
// held, are the read model's rows for the query's ClosedQuery: merged as one
// more run, they complete the list (see readmodel.go). Without them, or
// with rows read for another state of the inbox than this one, such a list
// is ErrReadClosed.
func (s *State) List(f Filter, sort Sort, limit int, cur string, closed *ClosedRows) (Page, error) {
	if sort == "" {
		sort = SortRecent
	}
	if !sort.Valid() {
		return Page{}, fmt.Errorf("%w: sort: unknown value %q", ErrInvalid, sort)
	}
	for _, st := range f.Statuses {
		if !st.Valid() {
			return Page{}, fmt.Errorf("%w: status: unknown value %q", ErrInvalid, st)
		}
	}
	switch {
	case limit == 0:
		limit = DefaultLimit
	case limit < 1:
		limit = 1
	case limit > MaxLimit:
		limit = MaxLimit
	}
	var pivot *item
	pageSeq := s.seq
	changedAfter := int64(-1) // seq above which entries are skipped; -1: none
	if cur != "" {
		c, err := decodeCursor(cur)
		if err != nil {
			return Page{}, err
		}
		if c.sort != sort {
			return Page{}, fmt.Errorf("%w: cursor: made for sort %q, not %q", ErrInvalid, c.sort, sort)
		}
		if err := c.checkInbox(s.inboxID); err != nil {
			return Page{}, err
		}
		p := cursorItem(sort, c.key, c.id)
		pivot = &p
		if c.epoch == s.epoch && c.seq <= s.seq {
			pageSeq = c.seq
			changedAfter = c.seq
		}
	}

	statuses := f.statuses()
	sortIdx := sortIndex(sort)
	want := limit + 1
	runs := make([][]*entry, 0, len(statuses))
	for _, st := range statuses {
		run := make([]*entry, 0, min(want, 64))
		visit := func(it item) bool {
			if pivot != nil && !lessItem(*pivot, it) {
				return true // the cursor's own conversation
			}
			if changedAfter >= 0 && it.e.moved[sortIdx] > changedAfter {
				return true
			}
			if !f.matchesRest(&it.e.sum) {
				return true
			}
			run = append(run, it.e)
			return len(run) < want
		}
		t := s.idx[statusIdx(st)].tree(sort)
		if pivot != nil {
			t.AscendGreaterOrEqual(*pivot, visit)
		} else {
			t.Ascend(visit)
		}
		if len(run) > 0 {
			runs = append(runs, run)
		}
	}
	var bound *item // the read model's rows reach no further than this
	if s.closedNotHeld > 0 && slices.Contains(statuses, conversation.StatusClosed) {
		if closed == nil {
			return Page{}, ErrReadClosed
		}
		run, b, stale := s.closedRun(closed, &f, sort, pivot, changedAfter)
		if stale {
			return Page{}, ErrReadClosed
		}
		bound = b
		if len(run) > 0 {
			runs = append(runs, run)
		}
	}
	merged := mergeRuns(runs, want, sort)
	if bound != nil {
		// Closed conversations past the bound are unknown yet: the page
		// ends at it, and the next one resumes from there.
		n := len(merged)
		for n > 0 && lessItem(*bound, item{indexKey(sort, merged[n-1]), merged[n-1]}) {
			n--
		}
		if n < len(merged) || n <= limit {
			merged = merged[:min(n, limit)]
		} else {
			bound = nil // the page ends before the bound anyway
		}
	}

	closedCount := -1
	if closed != nil && closed.Counted && s.closedNotHeld > 0 {
		closedCount = closed.Count
	}
	p := Page{Total: s.total(&f, statuses, closedCount)}
	n := min(len(merged), limit)
	p.Conversations = make([]conversation.Summary, n)
	for i, e := range merged[:n] {
		p.Conversations[i] = cloneSummary(e.sum)
	}
	next := func(key int64, id string) string {
		return cursor{sort: sort, inbox: inboxTag(s.inboxID), key: key, id: id, seq: pageSeq, epoch: s.epoch}.encode()
	}
	switch {
	case bound != nil && n > 0:
		last := merged[n-1]
		p.NextCursor = next(last.key(sort), last.sum.ID)
	case bound != nil:
		// Nothing to show up to the bound (every row was held or
		// filtered): resume after it.
		p.NextCursor = next(bound.e.key(sort), bound.e.sum.ID)
	case len(merged) > limit:
		last := merged[limit-1]
		p.NextCursor = next(last.key(sort), last.sum.ID)
	}
	return p, nil
}

// mergeRuns is a k-way merge of sorted runs, stopping at want entries; k is
// at most 5 (four statuses and the read model's closed rows), so a linear
// pick of the smallest head beats a heap.
func mergeRuns(runs [][]*entry, want int, sort Sort) []*entry {
	if len(runs) == 1 {
		return runs[0][:min(len(runs[0]), want)]
	}
	at := func(e *entry) item { return item{indexKey(sort, e), e} }
	out := make([]*entry, 0, want)
	for len(out) < want {
		best := -1
		for i, r := range runs {
			if len(r) > 0 && (best < 0 || lessItem(at(r[0]), at(runs[best][0]))) {
				best = i
			}
		}
		if best < 0 {
			break
		}
		out = append(out, runs[best][0])
		runs[best] = runs[best][1:]
	}
	return out
}

// total counts the conversations matching f now. Counters answer any
// combination of statuses, addressed and assignee; channel and tag are not
// counted per value, so they cost one scan of the requested statuses.
// closedCount, when not negative, is the read model's count of the closed
// conversations matching f: the counters hold only the closed ones in
// memory by anything but status.
func (s *State) total(f *Filter, statuses []conversation.Status, closedCount int) int {
	n := 0
	for _, st := range statuses {
		i := statusIdx(st)
		switch {
		case i == closedIdx && closedCount >= 0:
			n += closedCount
		case !f.onlyCountable():
			s.idx[i].tree(SortOldest).Ascend(func(it item) bool {
				if f.matchesRest(&it.e.sum) {
					n++
				}
				return true
			})
		default:
			n += s.counted(f, i)
		}
	}
	return n
}

// counted is the counters' number of conversations of status index i
// matching f, whose channel and tag are unset.
func (s *State) counted(f *Filter, i int) int {
	k := &s.cnt[i]
	var p pair
	switch f.Assignee {
	case "":
		p = k.pair
		if i == closedIdx && f.Addressed == nil {
			p.all += s.closedNotHeld
		}
	case AssigneeNone:
		p = k.byAssignee[""]
	default:
		p = k.byAssignee[f.Assignee]
	}
	switch {
	case f.Addressed == nil:
		return p.all
	case *f.Addressed:
		return p.all - p.unaddressed
	default:
		return p.unaddressed
	}
}
