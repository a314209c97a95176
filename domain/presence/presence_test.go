package presence

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestSetSteps(t *testing.T) {
	type step struct {
		op, watcher, agent string // op: add or remove
		changed            bool
		agents             string // comma-separated, sorted
	}
	steps := []step{
		{"add", "s1", "ag_b", true, "ag_b"},
		{"add", "s1", "ag_b", false, "ag_b"}, // a resent watch
		{"add", "s2", "ag_a", true, "ag_a,ag_b"},
		{"add", "s3", "ag_b", false, "ag_a,ag_b"}, // ag_b's second tab
		{"add", "k1", "", false, "ag_a,ag_b"},     // an account key: watches, unlisted
		{"remove", "s1", "", false, "ag_a,ag_b"},  // ag_b still has s3 open
		{"remove", "s1", "", false, "ag_a,ag_b"},  // unwatch, then its termination
		{"remove", "k1", "", false, "ag_a,ag_b"},
		{"remove", "s3", "", true, "ag_a"},
		{"add", "s2", "ag_c", true, "ag_c"}, // a watcher moved to another agent
		{"remove", "nobody", "", false, "ag_c"},
		{"remove", "s2", "", true, ""},
	}
	var s Set
	if got := s.Agents(); got == nil || len(got) != 0 {
		t.Fatalf("empty set lists %#v, want an empty non-nil slice", got)
	}
	for i, st := range steps {
		var changed bool
		if st.op == "add" {
			changed = s.Add(st.watcher, st.agent)
		} else {
			changed = s.Remove(st.watcher)
		}
		if got := strings.Join(s.Agents(), ","); changed != st.changed || got != st.agents {
			t.Fatalf("step %d %s %s %s: changed %t agents %q, want %t %q", i, st.op, st.watcher, st.agent, changed, got, st.changed, st.agents)
		}
	}
	if s.Watchers() != 0 {
		t.Fatalf("%d watchers left", s.Watchers())
	}
}

// TestSetMatchesModel runs random watches and unwatches against a model that
// recomputes the agents from scratch: the set reports a change exactly when
// the listed agents differ, and lists what the model lists.
func TestSetMatchesModel(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	agents := []string{"", "ag_1", "ag_2", "ag_3"}
	watchers := []string{"w0", "w1", "w2", "w3", "w4", "w5"}
	model := map[string]string{}
	list := func() []string {
		var out []string
		for _, a := range model {
			if a != "" && !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
		slices.Sort(out)
		return out
	}
	var s Set
	for i := range 20000 {
		before := list()
		w := watchers[r.IntN(len(watchers))]
		var changed bool
		if r.IntN(2) == 0 {
			a := agents[r.IntN(len(agents))]
			model[w] = a
			changed = s.Add(w, a)
		} else {
			delete(model, w)
			changed = s.Remove(w)
		}
		after := list()
		if got := s.Agents(); !slices.Equal(got, after) && !(len(got) == 0 && len(after) == 0) {
			t.Fatalf("op %d: agents %v, model %v", i, got, after)
		}
		if want := !slices.Equal(before, after); changed != want {
			t.Fatalf("op %d: changed %t, model says %t (%v → %v)", i, changed, want, before, after)
		}
		if s.Watchers() != len(model) {
			t.Fatalf("op %d: %d watchers, model %d", i, s.Watchers(), len(model))
		}
	}
}

// AgentOf names a watcher's agent while it watches, "" otherwise.
func TestSetAgentOf(t *testing.T) {
	var s Set
	if got := s.AgentOf("s1"); got != "" {
		t.Fatalf("empty set: %q", got)
	}
	s.Add("s1", "ag_a")
	s.Add("k1", "")
	if s.AgentOf("s1") != "ag_a" || s.AgentOf("k1") != "" || s.AgentOf("s2") != "" {
		t.Fatalf("agents of s1, k1, s2: %q %q %q", s.AgentOf("s1"), s.AgentOf("k1"), s.AgentOf("s2"))
	}
	s.Add("s1", "ag_b")
	s.Remove("k1")
	if s.AgentOf("s1") != "ag_b" {
		t.Fatalf("moved watcher: %q", s.AgentOf("s1"))
	}
	s.Remove("s1")
	if s.AgentOf("s1") != "" {
		t.Fatalf("removed watcher: %q", s.AgentOf("s1"))
	}
}
