// Package eviction decides when a member must leave a cluster that has
// split around it. It keeps no state and starts no goroutine: the node
// publishes its view of the membership where every member reads it (the
// database), and asks Decide with the views of the others, so the rule is
// tested on its own and under the race detector.
//
// Why a member must ever leave: protoactor-go blocks a member that missed
// its health checks or heartbeats for good ("we will never allow a member
// that failed a health check to join back in", cluster/member_list.go),
// and a blocked member's connections are refused. A member that was only
// paused (a stalled VM, SIGSTOP) or cut off for a few seconds comes back
// under the same id and is never let in again; it blocks the others in
// turn when their heartbeats look expired to it. The cluster then stays
// split: each side serves its own copies of the inboxes, and lists, counts
// and streams differ by the node a client asks (fencing keeps the writes
// right, not the reads). Only a new id rejoins, which is a restart, as in
// Orleans, where a silo the membership table declares dead ends itself.
package eviction

import "slices"

// View is one member's view of the cluster: its id, the members it
// routes to, and the members it has blocked.
type View struct {
	ID      string
	Members []string
	Blocked []string
}

// Decide says whether the member whose view is self must leave, given the
// current views of the others (peers: only views recently published, so
// that a dead or paused member's last view does not count for long), and
// which peer it is in conflict with.
//
// Two members are in conflict when either has blocked the other while both
// publish: they can never talk again under these ids, so one of them must
// restart. The one whose side is smaller leaves; with sides of equal size,
// the one with the greater id. A member's side is itself and the members
// it routes to that route to it too, neither having blocked the other. So
// a paused member that the others blocked leaves whether or not it blocked
// them back, and the others stay; a cluster of two that blocked each other
// loses exactly one member.
//
// Views change one member at a time, so for a moment they may disagree (a
// member that just resumed still publishes the view it had before its
// pause): act on Decide only when it holds for a while (Detector).
func Decide(self View, peers []View) (conflict string, leave bool) {
	all := append([]View{self}, peers...)
	mine := side(self, all)
	for _, p := range peers {
		if p.ID == self.ID || !slices.Contains(p.Blocked, self.ID) && !slices.Contains(self.Blocked, p.ID) {
			continue
		}
		theirs := side(p, all)
		if theirs > mine || theirs == mine && p.ID < self.ID {
			return p.ID, true
		}
	}
	return "", false
}

// side counts v and the members of its view whose own view has v as a
// member, neither blocking the other.
func side(v View, all []View) int {
	n := 1
	for _, m := range v.Members {
		if m != v.ID && !slices.Contains(v.Blocked, m) && routesTo(all, m, v.ID) {
			n++
		}
	}
	return n
}

// routesTo reports whether the published view of member a has b as a
// member and does not block it.
func routesTo(all []View, a, b string) bool {
	for _, v := range all {
		if v.ID == a {
			return slices.Contains(v.Members, b) && !slices.Contains(v.Blocked, b)
		}
	}
	return false
}

// Detector turns Decide into a decision to leave: the same conflict, found
// in Rounds consecutive observations. It is not safe for concurrent use.
type Detector struct {
	Rounds int

	conflict string
	seen     int
}

// Observe takes the current views and says whether to leave now, and
// because of which peer.
func (d *Detector) Observe(self View, peers []View) (conflict string, leave bool) {
	with, ok := Decide(self, peers)
	if !ok || with != d.conflict {
		d.conflict, d.seen = with, 0
	}
	if !ok {
		return "", false
	}
	d.seen++
	return with, d.seen >= d.Rounds
}
