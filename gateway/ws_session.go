package gateway

import (
	"context"
	"encoding/json"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/switchboard-dev/switchboard/actors"
	"github.com/switchboard-dev/switchboard/actors/actorpb"
	"github.com/switchboard-dev/switchboard/gateway/outbox"
)

// Local messages to a session actor (from its connection's goroutines; they
// never cross nodes, so plain structs are fine).
type (
	subscribeReq struct {
		inbox, accountID, filter string
		ref                      json.RawMessage
		resume                   bool
		epoch                    string
		seq                      int64
		done                     chan struct{}
	}
	unsubscribeReq struct{ inbox string }
	watchReq       struct {
		conv, accountID string
		ref             json.RawMessage
		done            chan struct{}
	}
	unwatchReq struct{ conv string }
	typingReq  struct{ conv, accountID string }
	// resynced: the queue wrote a slow-consumer resync for inbox; time to
	// fetch its snapshot.
	resynced struct{ inbox string }
	// requestFailed: a subscribe or watch request was refused or timed out.
	requestFailed struct {
		inbox, conv string
		gen         uint64
		err         error
	}
	retrySubscribe struct {
		inbox string
		gen   uint64
	}
)

// wsSub is one inbox subscription of a session.
type wsSub struct {
	inbox, accountID, filter string
	gen                      uint64 // subscription_id of the current registration
	pending                  bool   // registered, InboxSubscribed not yet here
	// ref and done are set while the client's subscribe frame awaits its
	// answer; an internal re-subscription has neither.
	ref  json.RawMessage
	done chan struct{}
	// reason is the resync reason to send when an internal re-subscription
	// cannot resume ("" when a resync was sent already).
	reason     string
	epoch      string
	seq        int64
	inboxPID   *actor.PID
	retryDelay time.Duration
}

type wsWatch struct {
	conv, accountID string
	gen             uint64
	pending         bool
	ref             json.RawMessage
	done            chan struct{}
	pid             *actor.PID
	version         int64 // at the last registration
}

// session is the actor of one websocket connection. Inbox and conversation
// actors Send to it; it keeps the connection's subscriptions and watches
// and queues frames on the connection's outbound queue, never blocking:
// requests it makes run on short-lived goroutines that report back.
type session struct {
	wc      *wsConn
	agentID string
	subs    map[string]*wsSub
	watches map[string]*wsWatch
	gen     uint64
}

func newSession(wc *wsConn) *session {
	return &session{wc: wc, agentID: principalFrom(wc.ctx).AgentID, subs: map[string]*wsSub{}, watches: map[string]*wsWatch{}}
}

func (se *session) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *subscribeReq:
		se.clientSubscribe(ctx, m)
	case *actorpb.InboxSubscribed:
		se.subscribed(ctx, m)
	case *actorpb.InboxUpdate:
		se.update(ctx, m)
	case *requestFailed:
		se.failed(ctx, m)
	case *retrySubscribe:
		if sub := se.subs[m.inbox]; sub != nil && sub.gen == m.gen && sub.pending {
			se.request(ctx, sub, sub.seq > 0 || sub.epoch != "")
		}
	case *resynced:
		if sub := se.subs[m.inbox]; sub != nil {
			sub.reason = "" // the resync frame was sent by the queue
			se.request(ctx, sub, false)
		}
	case *unsubscribeReq:
		se.unsubscribe(ctx, m.inbox)
	case *watchReq:
		se.clientWatch(ctx, m)
	case *actorpb.ConversationWatched:
		se.watched(ctx, m)
	case *actorpb.ConversationEvent:
		if w := se.watches[m.ConversationId]; w != nil && !w.pending {
			kind := outbox.Other
			if isTypingFrame(m.FrameJson) {
				kind = outbox.Typing
			}
			se.wc.push(outbox.Frame{Kind: kind, Data: m.FrameJson})
		}
	case *retryWatchMsg:
		if w := se.watches[m.conv]; w != nil && w.pending && w.done == nil {
			se.requestWatch(ctx, w)
		}
	case *unwatchReq:
		if w := se.watches[m.conv]; w != nil {
			delete(se.watches, m.conv)
			if w.pid != nil {
				ctx.Send(w.pid, &actorpb.UnwatchConversation{ConversationId: m.conv, Watcher: actors.PbPID(ctx.Self())})
				ctx.Unwatch(w.pid)
			}
			finish(&w.done)
		}
	case *typingReq:
		msg := &actorpb.Typing{AccountId: m.accountID, ConversationId: m.conv, AgentId: se.agentID, Watcher: actors.PbPID(ctx.Self())}
		if w := se.watches[m.conv]; w != nil && w.pid != nil {
			ctx.Send(w.pid, msg)
		} else {
			_ = se.wc.s.node.Send(actors.KindConversation, m.conv, msg)
		}
	case *actor.Terminated:
		se.terminated(ctx, m.Who)
	case *actor.Stopped:
		self := actors.PbPID(ctx.Self())
		for _, sub := range se.subs {
			if sub.inboxPID != nil {
				ctx.Send(sub.inboxPID, &actorpb.UnsubscribeInbox{InboxId: sub.inbox, Subscriber: self, SubscriptionId: sub.gen})
			}
			finish(&sub.done)
		}
		for _, w := range se.watches {
			if w.pid != nil {
				ctx.Send(w.pid, &actorpb.UnwatchConversation{ConversationId: w.conv, Watcher: self})
			}
			finish(&w.done)
		}
	}
}

func finish(done *chan struct{}) {
	if *done != nil {
		close(*done)
		*done = nil
	}
}

func isTypingFrame(b []byte) bool {
	const prefix = `{"type":"typing"`
	return len(b) >= len(prefix) && string(b[:len(prefix)]) == prefix
}

func (se *session) nextGen() uint64 { se.gen++; return se.gen }

func (se *session) clientSubscribe(ctx actor.Context, m *subscribeReq) {
	sub := se.subs[m.inbox]
	if sub == nil {
		if len(se.subs) >= se.wc.cfg.MaxSubscriptions {
			se.wc.sendError(m.ref, errorf(codeRateLimited, "at most %d subscriptions per connection", se.wc.cfg.MaxSubscriptions))
			close(m.done)
			return
		}
		sub = &wsSub{inbox: m.inbox}
		se.subs[m.inbox] = sub
	}
	finish(&sub.done) // a subscribe replacing one still pending
	sub.accountID, sub.filter, sub.ref, sub.done, sub.reason = m.accountID, m.filter, m.ref, m.done, ""
	sub.epoch, sub.seq = m.epoch, m.seq
	if !m.resume {
		sub.epoch, sub.seq = "", 0
	}
	se.request(ctx, sub, m.resume)
}

// request (re)registers a subscription with its inbox actor. The request
// runs on its own goroutine (finding or activating the inbox may take a
// while); the inbox answers by Sending InboxSubscribed to this actor.
func (se *session) request(ctx actor.Context, sub *wsSub, resume bool) {
	sub.gen = se.nextGen()
	sub.pending = true
	msg := &actorpb.SubscribeInbox{AccountId: sub.accountID, InboxId: sub.inbox, AgentId: se.agentID,
		Subscriber: actors.PbPID(ctx.Self()), SubscriptionId: sub.gen, Filter: sub.filter,
		Resume: resume, ResumeEpoch: sub.epoch, ResumeSeq: sub.seq}
	wc, self, gen, inbox := se.wc, ctx.Self(), sub.gen, sub.inbox
	go func() {
		rctx, cancel := context.WithTimeout(wc.ctx, 10*time.Second)
		defer cancel()
		res, err := wc.s.node.Request(rctx, actors.KindInbox, inbox, msg)
		if err == nil {
			if ack, ok := res.(*actorpb.Ack); !ok {
				err = errorf(codeUnavailable, "inbox answered %T", res)
			} else if ack.Error != nil {
				err = &actors.Error{Code: ack.Error.Code, Message: ack.Error.Message}
			}
		}
		if err != nil {
			wc.root.Send(self, &requestFailed{inbox: inbox, gen: gen, err: err})
		}
	}()
}

func (se *session) failed(ctx actor.Context, m *requestFailed) {
	if m.conv != "" {
		w := se.watches[m.conv]
		if w == nil || w.gen != m.gen || !w.pending {
			return
		}
		if w.done != nil {
			se.wc.sendError(w.ref, m.err)
			finish(&w.done)
			delete(se.watches, m.conv)
			return
		}
		se.retryWatch(ctx, w)
		return
	}
	sub := se.subs[m.inbox]
	if sub == nil || sub.gen != m.gen || !sub.pending {
		return
	}
	if sub.done != nil {
		// The client's own subscribe: tell it, keep nothing.
		se.wc.sendError(sub.ref, m.err)
		finish(&sub.done)
		delete(se.subs, m.inbox)
		return
	}
	// An internal re-subscription (the inbox moved or restarted): retry
	// with backoff; the client keeps its subscription.
	sub.retryDelay = min(max(2*sub.retryDelay, 100*time.Millisecond), 5*time.Second)
	root, self, msg := se.wc.root, ctx.Self(), &retrySubscribe{inbox: sub.inbox, gen: sub.gen}
	time.AfterFunc(sub.retryDelay, func() { root.Send(self, msg) })
}

// subscribed installs a registration: subscribed (for the client's own
// subscribe) or resync (when continuity was lost), then the missed updates
// or the snapshot. Updates of this registration can only follow it.
func (se *session) subscribed(ctx actor.Context, m *actorpb.InboxSubscribed) {
	sub := se.subs[m.InboxId]
	if sub == nil || sub.gen != m.SubscriptionId || !sub.pending {
		// An answer nobody waits for (the client unsubscribed, or a retry
		// raced): make sure the inbox forgets it.
		if pid := actors.PIDOf(m.Inbox); pid != nil && (sub == nil || sub.gen != m.SubscriptionId) {
			ctx.Send(pid, &actorpb.UnsubscribeInbox{InboxId: m.InboxId, Subscriber: actors.PbPID(ctx.Self()), SubscriptionId: m.SubscriptionId})
		}
		return
	}
	sub.pending, sub.retryDelay = false, 0
	if pid := actors.PIDOf(m.Inbox); pid != nil && (sub.inboxPID == nil || !sub.inboxPID.Equal(pid)) {
		if sub.inboxPID != nil {
			ctx.Unwatch(sub.inboxPID)
		}
		sub.inboxPID = pid
		ctx.Watch(pid)
	}
	if sub.done != nil {
		se.wc.pushFrame(subscribedOut{Type: "subscribed", Ref: sub.ref, InboxID: sub.inbox, Epoch: m.Epoch, Seq: m.Seq, Resumed: m.Resumed})
	} else if !m.Resumed && sub.reason != "" {
		se.wc.pushFrame(resyncOut{Type: "resync", InboxID: sub.inbox, Reason: sub.reason})
	}
	sub.ref, sub.reason = nil, ""
	sub.epoch = m.Epoch
	if m.Resumed {
		for _, u := range m.Updates {
			se.wc.pushUpdate(sub.inbox, u.ConversationId, u.Version, u.FrameJson)
		}
		if se.wc.q.Stale(sub.inbox) {
			// Resumed into a queue that is waiting for a snapshot.
			sub.seq = m.Seq
			finish(&sub.done)
			se.request(ctx, sub, false)
			return
		}
	} else {
		convs, counts := m.ConversationsJson, m.CountsJson
		if len(convs) == 0 || string(convs) == "null" {
			convs = []byte("[]")
		}
		se.wc.push(outbox.Frame{Kind: outbox.Snapshot, Inbox: sub.inbox, Data: encodeFrame(snapshotOut{Type: "snapshot",
			InboxID: sub.inbox, Epoch: m.Epoch, Seq: m.Seq, Conversations: convs, Total: m.Total, Counts: counts})})
	}
	sub.seq = m.Seq
	finish(&sub.done)
}

func (se *session) update(ctx actor.Context, u *actorpb.InboxUpdate) {
	sub := se.subs[u.InboxId]
	if sub == nil || sub.gen != u.SubscriptionId || sub.pending {
		return // of a registration replaced or ended
	}
	if u.Epoch != sub.epoch || u.PrevSeq != sub.seq {
		// A message was lost on the way (a remote endpoint restarted):
		// resume from what this session has, which replays the gap.
		sub.reason = "gap"
		se.request(ctx, sub, true)
		return
	}
	sub.seq = u.Seq
	se.wc.pushUpdate(sub.inbox, u.ConversationId, u.Version, u.FrameJson)
}

func (se *session) unsubscribe(ctx actor.Context, inbox string) {
	sub := se.subs[inbox]
	if sub == nil {
		return
	}
	delete(se.subs, inbox)
	se.wc.q.Forget(inbox)
	if sub.inboxPID != nil {
		ctx.Send(sub.inboxPID, &actorpb.UnsubscribeInbox{InboxId: inbox, Subscriber: actors.PbPID(ctx.Self()), SubscriptionId: sub.gen})
		ctx.Unwatch(sub.inboxPID)
	}
	finish(&sub.done)
}

// terminated: an inbox or conversation actor this session listens to
// stopped (passivated, its node left, a restart). Re-register with the new
// activation; an inbox resumes when its epoch is the same, and otherwise the
// client gets resync + snapshot.
func (se *session) terminated(ctx actor.Context, who *actor.PID) {
	if who == nil {
		return
	}
	for _, sub := range se.subs {
		if sub.inboxPID != nil && sub.inboxPID.Equal(who) {
			sub.inboxPID = nil
			if !sub.pending {
				sub.reason = "epoch_changed"
				se.request(ctx, sub, true)
			}
		}
	}
	for _, w := range se.watches {
		if w.pid != nil && w.pid.Equal(who) {
			w.pid = nil
			se.requestWatch(ctx, w)
		}
	}
}

func (se *session) clientWatch(ctx actor.Context, m *watchReq) {
	if w := se.watches[m.conv]; w != nil && !w.pending {
		// Already watching: confirm without registering twice.
		se.wc.pushFrame(watchingOut{Type: "watching", Ref: m.ref, ConversationID: m.conv, Version: w.version})
		close(m.done)
		return
	}
	if len(se.watches) >= se.wc.cfg.MaxSubscriptions {
		se.wc.sendError(m.ref, errorf(codeRateLimited, "at most %d watched conversations per connection", se.wc.cfg.MaxSubscriptions))
		close(m.done)
		return
	}
	w := se.watches[m.conv]
	if w == nil {
		w = &wsWatch{conv: m.conv}
		se.watches[m.conv] = w
	}
	finish(&w.done)
	w.accountID, w.ref, w.done = m.accountID, m.ref, m.done
	se.requestWatch(ctx, w)
}

func (se *session) requestWatch(ctx actor.Context, w *wsWatch) {
	w.gen = se.nextGen()
	w.pending = true
	msg := &actorpb.WatchConversation{AccountId: w.accountID, ConversationId: w.conv, AgentId: se.agentID, Watcher: actors.PbPID(ctx.Self())}
	wc, self, gen, conv := se.wc, ctx.Self(), w.gen, w.conv
	go func() {
		rctx, cancel := context.WithTimeout(wc.ctx, 10*time.Second)
		defer cancel()
		res, err := wc.s.node.Request(rctx, actors.KindConversation, conv, msg)
		if err == nil {
			if ack, ok := res.(*actorpb.Ack); !ok {
				err = errorf(codeUnavailable, "conversation answered %T", res)
			} else if ack.Error != nil {
				err = &actors.Error{Code: ack.Error.Code, Message: ack.Error.Message}
			}
		}
		if err != nil {
			wc.root.Send(self, &requestFailed{conv: conv, gen: gen, err: err})
		}
	}()
}

func (se *session) retryWatch(ctx actor.Context, w *wsWatch) {
	root, self := se.wc.root, ctx.Self()
	conv := w.conv
	time.AfterFunc(time.Second, func() { root.Send(self, &retryWatchMsg{conv: conv}) })
	w.pending = true
}

type retryWatchMsg struct{ conv string }

func (se *session) watched(ctx actor.Context, m *actorpb.ConversationWatched) {
	w := se.watches[m.ConversationId]
	pid := actors.PIDOf(m.Conversation)
	if w == nil || !w.pending {
		if pid != nil && w == nil {
			ctx.Send(pid, &actorpb.UnwatchConversation{ConversationId: m.ConversationId, Watcher: actors.PbPID(ctx.Self())})
		}
		return
	}
	w.pending, w.version = false, m.Version
	if pid != nil && (w.pid == nil || !w.pid.Equal(pid)) {
		if w.pid != nil {
			ctx.Unwatch(w.pid)
		}
		w.pid = pid
		ctx.Watch(pid)
	}
	if w.done != nil {
		se.wc.pushFrame(watchingOut{Type: "watching", Ref: w.ref, ConversationID: w.conv, Version: m.Version})
	}
	w.ref = nil
	finish(&w.done)
}
