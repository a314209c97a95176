// Package workers runs actor mailboxes on goroutines that outlive one run.
//
// protoactor-go's default dispatcher starts a goroutine each time an idle
// mailbox gets a message. A fresh goroutine starts on a small stack, and
// an actor's Receive (a state machine, JSON, a database round trip) is deep
// enough to outgrow it: at 1,000 messages/s, growing and copying those
// stacks took 5% of the node's CPU. A worker here runs one mailbox, then
// waits briefly for the next, keeping the stack it grew.
package workers

import (
	"sync/atomic"
	"time"
)

// Dispatcher implements protoactor-go's actor.Dispatcher. Schedule never
// waits: a run goes to an idle worker if one is waiting, or else to a new
// one, so an actor that blocks (on a commit, on another actor's answer)
// can never keep another mailbox from running.
type Dispatcher struct {
	throughput int
	idleFor    time.Duration
	handoff    chan func() // unbuffered: taken only by a waiting worker
	idle       atomic.Int64
}

// New returns a dispatcher whose mailboxes process up to throughput
// messages per run (protoactor's default is 300) and whose workers exit
// after idleFor without work.
func New(throughput int, idleFor time.Duration) *Dispatcher {
	return &Dispatcher{throughput: throughput, idleFor: idleFor, handoff: make(chan func())}
}

// Schedule runs fn on a worker.
func (d *Dispatcher) Schedule(fn func()) {
	select {
	case d.handoff <- fn:
	default:
		go d.work(fn)
	}
}

// Idle is how many workers are waiting for a run.
func (d *Dispatcher) Idle() int64 { return d.idle.Load() }

// Throughput is the messages a mailbox processes per run.
func (d *Dispatcher) Throughput() int { return d.throughput }

func (d *Dispatcher) work(fn func()) {
	idle := time.NewTimer(d.idleFor)
	defer idle.Stop()
	for {
		fn()
		idle.Reset(d.idleFor)
		d.idle.Add(1)
		select {
		case fn = <-d.handoff:
			d.idle.Add(-1)
		case <-idle.C:
			d.idle.Add(-1)
			return
		}
	}
}
