package persistence

import (
	"sync"
	"time"
)

// notices spaces out the journal_appended notices of a busy writer.
// PostgreSQL wakes every listening backend of the database for each
// notice (the consumers', the timer scanner's and the revocation
// follower's, on every node), and each notice cost its own asynchronous
// transaction after the commit: at 1,000 appends/s the writer committed
// ~400 times a second and the notices and the consumer rounds they woke
// took about a tenth of PostgreSQL's CPU. A commit carries the notice in
// its pipeline when none went out for every; a commit inside that window
// is owed one, sent once at the window's end for all of them. A notice is
// owed only once its commit is durable, so none reaches a consumer before
// the rows it announces, and none is lost while the writer runs.
type notices struct {
	every time.Duration
	send  func() // sends one notice outside any batch

	mu       sync.Mutex
	last     time.Time // when the latest notice was claimed or sent
	trailing *time.Timer
	closed   bool
	sending  sync.WaitGroup // trailing notices being sent: close waits for them
}

func newNotices(every time.Duration, send func()) *notices {
	return &notices{every: every, send: send}
}

// claim reports whether a commit about to be sent carries the notice: yes
// when none was claimed or sent within the window.
func (n *notices) claim(now time.Time) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.every <= 0 || now.Sub(n.last) >= n.every {
		n.last = now
		return true
	}
	return false
}

// owe records a durable commit that carried no notice: one goes out at the
// end of the current window, shared by every commit owed it by then.
func (n *notices) owe(now time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.trailing != nil || n.closed {
		return
	}
	n.trailing = time.AfterFunc(max(n.last.Add(n.every).Sub(now), 0), n.fire)
}

func (n *notices) fire() {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return
	}
	n.trailing, n.last = nil, time.Now()
	n.sending.Add(1) // under mu: close, once it holds mu, sees every send
	n.mu.Unlock()
	defer n.sending.Done()
	n.send()
}

// close sends a notice still owed, at once, stops scheduling more, and
// waits for one its timer is sending: once it returns, no notice is on its
// way and the notices hold no connection.
func (n *notices) close() {
	n.mu.Lock()
	owed := n.trailing != nil && n.trailing.Stop()
	n.trailing, n.closed = nil, true
	n.mu.Unlock()
	if owed {
		n.send()
	}
	n.sending.Wait()
}
