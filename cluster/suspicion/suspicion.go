// Package suspicion decides which members of a cluster are suspected to be
// down from when each last answered a ping. It keeps no clock and starts
// no goroutine: the cluster pings, reports answers and asks, so the rules
// are tested on their own (and under the race detector, which the actor
// runtime's own races keep away from the cluster's tests).
//
// Why a member needs suspecting at all: a member that dies closes its
// connections, and the cluster routes around it at once. A member that
// freezes (a stalled VM, a process stopped or stuck in a pause) closes
// nothing, and its identities would wait for the membership's own lease to
// expire.
package suspicion

import "time"

// Detector tracks the members it is told to watch. It is not safe for
// concurrent use.
type Detector struct {
	after, every time.Duration
	peers        map[string]*peer
	checked      time.Time // the last Check
}

type peer struct {
	answered  time.Time // last answer, or when watching began
	suspected bool
}

// New returns a detector that suspects a member after it has not answered
// for after, asked by a caller that checks every so often.
func New(after, every time.Duration) *Detector {
	return &Detector{after: after, every: every, peers: map[string]*peer{}}
}

// Watch sets the members to watch: a new one is given a full period from
// now before it can be suspected, and one no longer listed is forgotten.
func (d *Detector) Watch(addrs []string, now time.Time) {
	keep := make(map[string]bool, len(addrs))
	for _, a := range addrs {
		keep[a] = true
		if d.peers[a] == nil {
			d.peers[a] = &peer{answered: now}
		}
	}
	for a := range d.peers {
		if !keep[a] {
			delete(d.peers, a)
		}
	}
}

// Answered records an answer from addr received at at. It reports whether
// addr was suspected until this answer.
func (d *Detector) Answered(addr string, at time.Time) (recovered bool) {
	p := d.peers[addr]
	if p == nil {
		return false
	}
	if at.After(p.answered) {
		p.answered = at
	}
	recovered, p.suspected = p.suspected, false
	return recovered
}

// Check returns the members that became suspect by now: silent for longer
// than the detector's period since their last answer. Each is returned
// once, until it answers again.
//
// Time the checker itself lost does not count as anyone's silence: a check
// that comes more than a cadence late (this process starved of CPU, or
// paused) moves every member's last answer forward by its lateness, since
// the answers that arrived meanwhile have not been read yet. Without that,
// a busy host makes every member suspect every other at once.
func (d *Detector) Check(now time.Time) []string {
	if !d.checked.IsZero() {
		if late := now.Sub(d.checked) - d.every; late > d.every {
			for _, p := range d.peers {
				p.answered = p.answered.Add(late)
			}
		}
	}
	d.checked = now
	var out []string
	for a, p := range d.peers {
		if !p.suspected && now.Sub(p.answered) > d.after {
			p.suspected = true
			out = append(out, a)
		}
	}
	return out
}
