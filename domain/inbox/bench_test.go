package inbox

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/domain/conversation"
)

const benchN = 100_000

// benchInbox is an inbox of n open conversations with varied keys, spread
// over a few assignees so that Counts does real map lookups.
func benchInbox(b *testing.B, n int) (*State, []conversation.Summary) {
	b.Helper()
	r := rand.New(rand.NewPCG(9, 9))
	sums := make([]conversation.Summary, n)
	for i := range sums {
		sum := randomSummary(r, fmt.Sprintf("c%06d", i), 1)
		sum.Status = conversation.StatusOpen
		sum.LastActivityAt = t0.Add(time.Duration(r.Int64N(int64(30 * 24 * time.Hour))))
		sums[i] = sum
	}
	s := New("in1", "e1", Config{})
	s.Load(sums, nil, 0)
	return s, sums
}

// BenchmarkFirstPage100k is the inbox screen: first page of 50 plus counts.
func BenchmarkFirstPage100k(b *testing.B) {
	s, _ := benchInbox(b, benchN)
	b.ReportAllocs()
	for b.Loop() {
		p, err := s.List(Filter{}, SortRecent, 50, "", nil)
		if err != nil || len(p.Conversations) != 50 || p.Total != benchN {
			b.Fatalf("page of %d, total %d: %v", len(p.Conversations), p.Total, err)
		}
		_ = s.Counts("ag1")
	}
}

// BenchmarkFirstPageLongestWaitMine100k: the agent's own unaddressed queue,
// a filter applied while walking (about 1 in 8 matches).
func BenchmarkFirstPageLongestWaitMine100k(b *testing.B) {
	s, _ := benchInbox(b, benchN)
	f := false
	b.ReportAllocs()
	for b.Loop() {
		p, err := s.List(Filter{Assignee: "ag1", Addressed: &f}, SortLongestWait, 50, "", nil)
		if err != nil || len(p.Conversations) != 50 {
			b.Fatalf("page of %d: %v", len(p.Conversations), err)
		}
		_ = s.Counts("ag1")
	}
}

// BenchmarkFirstPageBruteForce100k is the baseline the indexes replace:
// filter and sort everything per request, count by scanning.
func BenchmarkFirstPageBruteForce100k(b *testing.B) {
	_, sums := benchInbox(b, benchN)
	f := Filter{}
	b.ReportAllocs()
	for b.Loop() {
		sel := make([]*conversation.Summary, 0, len(sums))
		for i := range sums {
			if f.Matches(sums[i]) {
				sel = append(sel, &sums[i])
			}
		}
		sort.Slice(sel, func(i, j int) bool {
			a, c := sel[i], sel[j]
			if !a.LastActivityAt.Equal(c.LastActivityAt) {
				return a.LastActivityAt.After(c.LastActivityAt)
			}
			return a.ID < c.ID
		})
		page := make([]conversation.Summary, 0, 50)
		for _, p := range sel[:50] {
			page = append(page, cloneSummary(*p))
		}
		var c Counts
		for i := range sums {
			switch sums[i].Status {
			case conversation.StatusOpen:
				c.Open++
			case conversation.StatusNew:
				c.New++
			case conversation.StatusPending:
				c.Pending++
			case conversation.StatusClosed:
				c.Closed++
			}
			if sums[i].Status != conversation.StatusClosed {
				if !sums[i].Addressed {
					c.Unaddressed++
				}
				if sums[i].AssigneeID == nil {
					c.Unassigned++
				} else if *sums[i].AssigneeID == "ag1" {
					c.Mine++
				}
			}
		}
		if len(page) != 50 || c.Open != benchN {
			b.Fatal("bad baseline")
		}
	}
}

// BenchmarkApply100k: one summary change (new activity, so every index key
// moves) in an inbox of 100,000 open conversations.
func BenchmarkApply100k(b *testing.B) {
	s, sums := benchInbox(b, benchN)
	versions := make([]int64, len(sums))
	for i := range versions {
		versions[i] = 1
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		k := i % len(sums)
		i++
		versions[k]++
		sum := sums[k]
		sum.Version = versions[k]
		sum.LastActivityAt = sum.LastActivityAt.Add(time.Second)
		if _, ok := s.Apply(sum, sum.Status); !ok {
			b.Fatal("not applied")
		}
	}
}
