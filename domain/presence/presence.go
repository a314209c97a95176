// Package presence keeps who has a conversation open: the agents behind the
// websocket sessions watching it (docs/api.md, the `presence` frame). It is the
// conversation actor's bookkeeping, kept apart so that it runs under the
// race detector without the actor runtime.
package presence

import "slices"

// Set maps watcher sessions to the agents behind them. An agent with two
// tabs is listed once and stays listed until its last session goes; a
// session of an account key (no agent) counts as a watcher but is never
// listed. The zero Set is empty and ready to use; it is not safe for
// concurrent use (one actor owns it).
type Set struct {
	agentOf  map[string]string // watcher key → agent id ("" for an account key)
	sessions map[string]int    // agent id → its watching sessions
}

// Add records that watcher (a session's key) watches for agent, and reports
// whether the listed agents changed. Adding a watcher again under another
// agent moves it.
func (s *Set) Add(watcher, agent string) bool {
	if old, ok := s.agentOf[watcher]; ok {
		if old == agent {
			return false
		}
		changed := s.drop(old)
		return s.add(watcher, agent) || changed
	}
	return s.add(watcher, agent)
}

func (s *Set) add(watcher, agent string) bool {
	if s.agentOf == nil {
		s.agentOf = make(map[string]string)
		s.sessions = make(map[string]int)
	}
	s.agentOf[watcher] = agent
	if agent == "" {
		return false
	}
	s.sessions[agent]++
	return s.sessions[agent] == 1
}

// Remove forgets watcher and reports whether the listed agents changed. An
// unknown watcher (already removed: an unwatch followed by its session's
// termination) changes nothing.
func (s *Set) Remove(watcher string) bool {
	agent, ok := s.agentOf[watcher]
	if !ok {
		return false
	}
	delete(s.agentOf, watcher)
	return s.drop(agent)
}

// drop ends one session of agent; true when it was the last.
func (s *Set) drop(agent string) bool {
	if agent == "" {
		return false
	}
	if s.sessions[agent]--; s.sessions[agent] > 0 {
		return false
	}
	delete(s.sessions, agent)
	return true
}

// Agents lists the agents watching now, sorted, in a new slice (never nil).
func (s *Set) Agents() []string {
	out := make([]string, 0, len(s.sessions))
	for a := range s.sessions {
		out = append(out, a)
	}
	slices.Sort(out)
	return out
}

// Watchers is the number of watching sessions, account keys included.
func (s *Set) Watchers() int { return len(s.agentOf) }

// AgentOf is the agent behind watcher: "" for an account key's session or
// a watcher not in the set.
func (s *Set) AgentOf(watcher string) string { return s.agentOf[watcher] }
