// Package session is the subscription and watch logic of one websocket
// connection, as a pure state machine: events in (a client's subscribe, an
// inbox's answer, an update, a lost activation, a timer firing), effects out
// (frames to queue, requests to make, actors to monitor, timers to set). It
// runs no goroutine and sets no timer; the session actor in the gateway
// feeds it and carries its effects out, so it is tested under -race
// without the actor runtime.
package session

import (
	"encoding/json"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/switchboard-dev/switchboard/actors"
	"github.com/switchboard-dev/switchboard/domain/inbox"
	"github.com/switchboard-dev/switchboard/gateway/outbox"
	"github.com/switchboard-dev/switchboard/wire"
)

// Effect is something the session asks its actor to do, in order.
type Effect interface{ effect() }

type (
	// Push queues a frame on the connection.
	Push struct{ Frame outbox.Frame }
	// Forget drops an inbox's queued updates (it was unsubscribed).
	Forget struct{ Inbox string }
	// Subscribe registers with an inbox actor (actors.Engine.Subscribe);
	// a refusal comes back as Failed.
	Subscribe struct{ actors.Subscription }
	// Unsubscribe tells an inbox activation to forget a registration.
	Unsubscribe struct {
		PID   *actor.PID
		Inbox string
		ID    uint64
	}
	// Watch registers with a conversation actor; a refusal comes back as
	// Failed.
	Watch struct {
		AccountID, Conv string
		ID              uint64
		Summaries       bool
	}
	// Unwatch tells a conversation activation to forget this watcher.
	Unwatch struct {
		PID  *actor.PID
		Conv string
	}
	// Monitor and Unmonitor start and stop watching an actor's lifetime
	// (a Terminated event follows its stop).
	Monitor   struct{ PID *actor.PID }
	Unmonitor struct{ PID *actor.PID }
	// Typing forwards the agent's typing to a conversation: to PID when
	// watched, else by identity.
	Typing struct {
		PID                      *actor.PID
		AccountID, Conv, AgentID string
	}
	// Done releases the reader of the client frame that waits on C (its
	// answer is queued before it).
	Done struct{ C chan struct{} }
	// ResyncIfStale asks whether the queue overflowed while a resume was
	// replayed into it; if so, the actor calls Resynced(Inbox).
	ResyncIfStale struct{ Inbox string }
	// Retry asks for a RetrySubscribe (Inbox set) or RetryWatch (Conv set)
	// event after a delay.
	Retry struct {
		After       time.Duration
		Inbox, Conv string
		ID          uint64
	}
)

func (Push) effect()          {}
func (Forget) effect()        {}
func (Subscribe) effect()     {}
func (Unsubscribe) effect()   {}
func (Watch) effect()         {}
func (Unwatch) effect()       {}
func (Monitor) effect()       {}
func (Unmonitor) effect()     {}
func (Typing) effect()        {}
func (Retry) effect()         {}
func (Done) effect()          {}
func (ResyncIfStale) effect() {}

// Retry delays.
const (
	minSubscribeRetry = 100 * time.Millisecond
	maxSubscribeRetry = 5 * time.Second
	watchRetry        = time.Second
)

// sub is one inbox subscription.
type sub struct {
	inbox, accountID string
	query            inbox.Query
	gen              uint64 // id of the current registration
	pending          bool   // registered, InboxSubscribed not yet here
	// ref and done are set while the client's subscribe awaits its
	// answer; an internal re-subscription has neither.
	ref  json.RawMessage
	done chan struct{}
	// reason is the resync reason to send when an internal re-subscription
	// cannot resume ("" when a resync was sent already).
	reason string
	// resumeAsked: the client's subscribe awaiting its answer asked to
	// resume; if it cannot, a resync says why before the snapshot.
	resumeAsked bool
	epoch       string
	seq         int64
	inboxPID    *actor.PID
	retryDelay  time.Duration
	// kept is the subscription a client's subscribe awaiting its answer
	// replaces; if that subscribe is refused, the client keeps it.
	kept *keptSub
}

// keptSub is what a live subscription resumes from.
type keptSub struct {
	query inbox.Query
	epoch string
	seq   int64
}

type watch struct {
	conv, accountID string
	summaries       bool
	gen             uint64
	pending         bool
	ref             json.RawMessage
	done            chan struct{}
	pid             *actor.PID
}

// Session is one connection's subscriptions and watches. Not safe for
// concurrent use: its actor calls it one message at a time.
type Session struct {
	self    *actor.PID
	agentID string
	max     int
	// maxReplay: see WithMaxReplay.
	maxReplay int
	subs      map[string]*sub
	watches   map[string]*watch
	gen       uint64
	out       []Effect
}

// New returns the session of the actor self, for an agent ("" for an
// account key), allowing max subscriptions and max watches.
func New(self *actor.PID, agentID string, max int) *Session {
	return &Session{self: self, agentID: agentID, max: max, subs: map[string]*sub{}, watches: map[string]*watch{}}
}

// WithMaxReplay bounds the updates a resume replays: a longer replay is
// answered with a snapshot instead, since the connection's queue would
// coalesce it and a resume must bring every missed update or a snapshot.
// 0: no bound.
func (s *Session) WithMaxReplay(n int) *Session {
	s.maxReplay = n
	return s
}

func (s *Session) emit(e Effect)                          { s.out = append(s.out, e) }
func (s *Session) push(f wire.Frame)                      { s.emit(Push{outbox.Frame{Kind: f.Kind, Data: f.Data}}) }
func (s *Session) pushErr(ref json.RawMessage, err error) { s.push(wire.ErrorFrame(ref, err)) }

// flush returns the effects of one event and starts the next list.
func (s *Session) flush() []Effect {
	out := s.out
	s.out = nil
	return out
}

func (s *Session) nextGen() uint64 { s.gen++; return s.gen }

// finish releases a waiting client frame, once.
func (s *Session) finish(done *chan struct{}) {
	if *done != nil {
		s.emit(Done{*done})
		*done = nil
	}
}

// ClientSubscribe is the client's subscribe frame. A Done effect releases
// Done once its answer (subscribed and snapshot or updates, or an error) is
// queued, so that the replies to later frames come after it.
type ClientSubscribe struct {
	Inbox, AccountID string
	Query            inbox.Query
	Ref              json.RawMessage
	Resume           bool
	Epoch            string
	Seq              int64
	Done             chan struct{}
}

// Subscribe handles a client's subscribe.
func (s *Session) Subscribe(m ClientSubscribe) []Effect {
	sb := s.subs[m.Inbox]
	if sb == nil {
		if len(s.subs) >= s.max {
			s.pushErr(m.Ref, wire.Errorf(wire.CodeRateLimited, "at most %d subscriptions per connection", s.max))
			s.emit(Done{m.Done})
			return s.flush()
		}
		sb = &sub{inbox: m.Inbox}
		s.subs[m.Inbox] = sb
	}
	if sb.done == nil && sb.inboxPID != nil { // answered before: the client has it
		sb.kept = &keptSub{query: sb.query, epoch: sb.epoch, seq: sb.seq}
	}
	s.finish(&sb.done) // a subscribe replacing one still pending
	sb.accountID, sb.query, sb.ref, sb.done, sb.reason = m.AccountID, m.Query, m.Ref, m.Done, ""
	sb.epoch, sb.seq, sb.resumeAsked = m.Epoch, m.Seq, m.Resume
	if !m.Resume {
		sb.epoch, sb.seq = "", 0
	}
	s.request(sb, m.Resume)
	return s.flush()
}

// request (re)registers a subscription with its inbox actor.
func (s *Session) request(sb *sub, resume bool) {
	sb.gen = s.nextGen()
	sb.pending = true
	s.emit(Subscribe{actors.Subscription{AccountID: sb.accountID, InboxID: sb.inbox, AgentID: s.agentID, Subscriber: s.self,
		ID: sb.gen, Query: sb.query, Resume: resume, Epoch: sb.epoch, Seq: sb.seq}})
}

// Failed is a Subscribe or Watch effect's request refused or timed out.
type Failed struct {
	Inbox, Conv string
	ID          uint64
	Err         error
}

// Fail handles a failed request.
func (s *Session) Fail(m Failed) []Effect {
	if m.Conv != "" {
		w := s.watches[m.Conv]
		if w == nil || w.gen != m.ID {
			return nil
		}
		if !w.pending {
			// A repeated watch's request: the registration stands, and
			// the client hears why its frame was not answered.
			if w.done != nil {
				s.pushErr(w.ref, m.Err)
				w.ref = nil
				s.finish(&w.done)
			}
			return s.flush()
		}
		if w.done != nil {
			s.pushErr(w.ref, m.Err)
			s.finish(&w.done)
			delete(s.watches, m.Conv)
			return s.flush()
		}
		s.emit(Retry{After: watchRetry, Conv: w.conv, ID: w.gen})
		return s.flush()
	}
	sb := s.subs[m.Inbox]
	if sb == nil || sb.gen != m.ID || !sb.pending {
		return nil
	}
	if sb.done != nil {
		// The client's own subscribe: tell it. A subscription it replaced
		// stands, resumed from where it was (the inbox may hold either
		// registration by now); otherwise nothing is kept.
		s.pushErr(sb.ref, m.Err)
		s.finish(&sb.done)
		sb.ref, sb.resumeAsked = nil, false
		if k := sb.kept; k != nil {
			sb.kept = nil
			sb.query, sb.epoch, sb.seq, sb.reason = k.query, k.epoch, k.seq, wire.ReasonGap
			s.request(sb, true)
			return s.flush()
		}
		delete(s.subs, m.Inbox)
		return s.flush()
	}
	// An internal re-subscription (the inbox moved or restarted): retry
	// with backoff; the client keeps its subscription.
	sb.retryDelay = min(max(2*sb.retryDelay, minSubscribeRetry), maxSubscribeRetry)
	s.emit(Retry{After: sb.retryDelay, Inbox: sb.inbox, ID: sb.gen})
	return s.flush()
}

// RetrySubscribe is a Retry effect's timer for an inbox firing.
func (s *Session) RetrySubscribe(inbox string, id uint64) []Effect {
	if sb := s.subs[inbox]; sb != nil && sb.gen == id && sb.pending {
		s.request(sb, sb.seq > 0 || sb.epoch != "")
	}
	return s.flush()
}

// RetryWatch is a Retry effect's timer for a conversation firing.
func (s *Session) RetryWatch(conv string) []Effect {
	if w := s.watches[conv]; w != nil && w.pending && w.done == nil {
		s.requestWatch(w)
	}
	return s.flush()
}

// Resynced: the queue wrote a slow-consumer resync for inbox, or holds one
// (it overflowed while a resume was replayed); time to fetch a snapshot.
func (s *Session) Resynced(inbox string) []Effect {
	if sb := s.subs[inbox]; sb != nil {
		sb.reason = "" // the queue sent the resync frame
		s.request(sb, false)
	}
	return s.flush()
}

// Subscribed installs a registration: subscribed (for the client's own
// subscribe) or resync (when continuity was lost), then the missed updates
// or the snapshot. Updates of this registration can only follow it. A
// resumed answer ends with ResyncIfStale: the replay may have overflowed
// the queue, which only the queue knows.
func (s *Session) Subscribed(m actors.InboxSubscribed) []Effect {
	sb := s.subs[m.InboxID]
	if sb == nil || sb.gen != m.SubscriptionID || !sb.pending {
		// An answer nobody waits for (the client unsubscribed, or a retry
		// raced): make sure the inbox forgets it.
		if m.Inbox != nil && (sb == nil || sb.gen != m.SubscriptionID) {
			s.emit(Unsubscribe{PID: m.Inbox, Inbox: m.InboxID, ID: m.SubscriptionID})
		}
		return s.flush()
	}
	if m.Resumed && s.maxReplay > 0 && len(m.Updates) > s.maxReplay {
		// Too long a replay to arrive whole: a snapshot instead. The
		// inbox replaces this registration with the new one.
		if sb.reason == "" {
			sb.reason = wire.ReasonResumeUnavailable
		}
		s.request(sb, false)
		return s.flush()
	}
	sb.pending, sb.retryDelay = false, 0
	if m.Inbox != nil && (sb.inboxPID == nil || !sb.inboxPID.Equal(m.Inbox)) {
		if sb.inboxPID != nil {
			s.emit(Unmonitor{sb.inboxPID})
		}
		sb.inboxPID = m.Inbox
		s.emit(Monitor{m.Inbox})
	}
	if sb.done != nil {
		s.push(wire.Subscribed(sb.ref, sb.inbox, m.Epoch, m.Seq, m.Resumed))
		if sb.resumeAsked && !m.Resumed {
			reason := wire.ReasonResumeUnavailable
			if m.Epoch != sb.epoch {
				reason = wire.ReasonEpochChanged
			}
			s.push(wire.Resync(sb.inbox, reason))
		}
	} else if !m.Resumed && sb.reason != "" {
		s.push(wire.Resync(sb.inbox, sb.reason))
	}
	sb.ref, sb.reason, sb.resumeAsked, sb.kept = nil, "", false, nil
	sb.epoch = m.Epoch
	if m.Resumed {
		for _, u := range m.Updates {
			s.pushUpdate(sb.inbox, u, true)
		}
		s.emit(ResyncIfStale{sb.inbox})
	} else {
		f := wire.Snapshot(sb.inbox, m.Epoch, m.Seq, m.Conversations, m.Total, m.Counts)
		s.emit(Push{outbox.Frame{Kind: f.Kind, Inbox: sb.inbox, Data: f.Data}})
	}
	sb.seq = m.Seq
	s.finish(&sb.done)
	return s.flush()
}

// pushUpdate queues an update; replay marks one of a resume's replay,
// which the queue never coalesces (outbox.Frame.Replay).
func (s *Session) pushUpdate(inbox string, u actors.InboxUpdate, replay bool) {
	s.emit(Push{outbox.Frame{Kind: wire.KindUpdate, Inbox: inbox, Conv: u.ConversationID, Version: u.Version, Data: u.Frame, Replay: replay}})
}

// Update is a live update of a subscription.
func (s *Session) Update(u actors.InboxUpdate) []Effect {
	sb := s.subs[u.InboxID]
	if sb == nil || sb.gen != u.SubscriptionID || sb.pending {
		return nil // of a registration replaced or ended
	}
	if u.Epoch != sb.epoch || u.PrevSeq != sb.seq {
		// A message was lost on the way (a remote endpoint restarted):
		// resume from what this session has, which replays the gap.
		sb.reason = wire.ReasonGap
		s.request(sb, true)
		return s.flush()
	}
	sb.seq = u.Seq
	s.pushUpdate(sb.inbox, u, false)
	return s.flush()
}

// Unsubscribe handles a client's unsubscribe.
func (s *Session) Unsubscribe(inbox string) []Effect {
	sb := s.subs[inbox]
	if sb == nil {
		return nil
	}
	delete(s.subs, inbox)
	s.emit(Forget{inbox})
	if sb.inboxPID != nil {
		s.emit(Unsubscribe{PID: sb.inboxPID, Inbox: inbox, ID: sb.gen})
		s.emit(Unmonitor{sb.inboxPID})
	}
	s.finish(&sb.done)
	return s.flush()
}

// Terminated: an inbox or conversation actor this session listens to
// stopped (passivated, its node left, a restart). Re-register with the new
// activation; an inbox resumes when its epoch is the same, and otherwise the
// client gets resync + snapshot.
func (s *Session) Terminated(who *actor.PID) []Effect {
	if who == nil {
		return nil
	}
	for _, sb := range s.subs {
		if sb.inboxPID != nil && sb.inboxPID.Equal(who) {
			sb.inboxPID = nil
			if !sb.pending {
				sb.reason = wire.ReasonEpochChanged
				s.request(sb, true)
			}
		}
	}
	for _, w := range s.watches {
		if w.pid != nil && w.pid.Equal(who) {
			w.pid = nil
			s.requestWatch(w)
		}
	}
	return s.flush()
}

// ClientWatch is the client's watch frame; Done as in ClientSubscribe.
type ClientWatch struct {
	Conv, AccountID string
	Ref             json.RawMessage
	Done            chan struct{}
	// Summaries: the client wants the summary after every event too.
	Summaries bool
}

// Watch handles a client's watch.
func (s *Session) Watch(m ClientWatch) []Effect {
	if w := s.watches[m.Conv]; w != nil && !w.pending {
		// Already watching: ask the conversation again, for the version
		// it is at now (the registration's is old), keeping the
		// registration and its items flowing meanwhile. It answers with
		// watching's version and then presence, as for a first watch.
		s.finish(&w.done)
		w.ref, w.done, w.gen, w.summaries = m.Ref, m.Done, s.nextGen(), m.Summaries
		s.emit(Watch{AccountID: w.accountID, Conv: w.conv, ID: w.gen, Summaries: w.summaries})
		return s.flush()
	}
	if len(s.watches) >= s.max {
		s.pushErr(m.Ref, wire.Errorf(wire.CodeRateLimited, "at most %d watched conversations per connection", s.max))
		s.emit(Done{m.Done})
		return s.flush()
	}
	w := s.watches[m.Conv]
	if w == nil {
		w = &watch{conv: m.Conv}
		s.watches[m.Conv] = w
	}
	s.finish(&w.done)
	w.accountID, w.ref, w.done, w.summaries = m.AccountID, m.Ref, m.Done, m.Summaries
	s.requestWatch(w)
	return s.flush()
}

func (s *Session) requestWatch(w *watch) {
	w.gen = s.nextGen()
	w.pending = true
	s.emit(Watch{AccountID: w.accountID, Conv: w.conv, ID: w.gen, Summaries: w.summaries})
}

// Watched installs a watch registration.
func (s *Session) Watched(m actors.ConversationWatched) []Effect {
	w := s.watches[m.ConversationID]
	if w == nil || (!w.pending && w.done == nil) { // nobody waits for it (a resent answer)
		if m.Conversation != nil && w == nil {
			s.emit(Unwatch{PID: m.Conversation, Conv: m.ConversationID})
		}
		return s.flush()
	}
	w.pending = false
	if m.Conversation != nil && (w.pid == nil || !w.pid.Equal(m.Conversation)) {
		if w.pid != nil {
			s.emit(Unmonitor{w.pid})
		}
		w.pid = m.Conversation
		s.emit(Monitor{m.Conversation})
	}
	if w.done != nil {
		s.push(wire.Watching(w.ref, w.conv, m.Version))
	}
	w.ref = nil
	s.finish(&w.done)
	return s.flush()
}

// Event is an item, typing or presence frame of a watched conversation.
func (s *Session) Event(m actors.ConversationEvent) []Effect {
	if w := s.watches[m.ConversationID]; w != nil && !w.pending {
		s.push(m.Frame)
	}
	return s.flush()
}

// Unwatch handles a client's unwatch.
func (s *Session) Unwatch(conv string) []Effect {
	w := s.watches[conv]
	if w == nil {
		return nil
	}
	delete(s.watches, conv)
	if w.pid != nil {
		s.emit(Unwatch{PID: w.pid, Conv: conv})
		s.emit(Unmonitor{w.pid})
	}
	s.finish(&w.done)
	return s.flush()
}

// Typing handles a client's typing in a conversation of accountID.
func (s *Session) Typing(conv, accountID string) []Effect {
	var pid *actor.PID
	if w := s.watches[conv]; w != nil {
		pid = w.pid
	}
	s.emit(Typing{PID: pid, AccountID: accountID, Conv: conv, AgentID: s.agentID})
	return s.flush()
}

// Stop ends the session: every registration is withdrawn and every waiting
// client frame released.
func (s *Session) Stop() []Effect {
	for _, sb := range s.subs {
		if sb.inboxPID != nil {
			s.emit(Unsubscribe{PID: sb.inboxPID, Inbox: sb.inbox, ID: sb.gen})
		}
		s.finish(&sb.done)
	}
	for _, w := range s.watches {
		if w.pid != nil {
			s.emit(Unwatch{PID: w.pid, Conv: w.conv})
		}
		s.finish(&w.done)
	}
	return s.flush()
}
