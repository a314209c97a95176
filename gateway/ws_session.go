package gateway

import (
	"context"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/switchboard-dev/switchboard/actors"
	"github.com/switchboard-dev/switchboard/gateway/session"
)

// Local messages to a session actor (from its connection's goroutines and
// timers; they never cross nodes, so plain structs are fine).
type (
	subscribeReq   struct{ session.ClientSubscribe }
	unsubscribeReq struct{ inbox string }
	watchReq       struct{ session.ClientWatch }
	unwatchReq     struct{ conv string }
	typingReq      struct{ conv, accountID string }
	// resynced: the queue wrote a slow-consumer resync for inbox; time to
	// fetch its snapshot.
	resynced struct{ inbox string }
	// requestFailed: a subscribe or watch request was refused or timed out.
	requestFailed struct{ session.Failed }
	// retry: a session.Retry timer fired.
	retry struct{ session.Retry }
)

// requestTimeout bounds a subscribe or watch registration.
const requestTimeout = 10 * time.Second

// sessionActor is the actor of one websocket connection: a thin shell that
// feeds session.Session what inbox and conversation actors Send it and what
// the connection's goroutines ask, and carries out the effects it returns,
// never blocking: its requests run on short-lived goroutines that report
// back.
type sessionActor struct {
	wc *wsConn
	se *session.Session
}

func newSession(wc *wsConn) *sessionActor { return &sessionActor{wc: wc} }

func (a *sessionActor) Receive(ctx actor.Context) {
	if a.se == nil {
		a.se = session.New(ctx.Self(), principalFrom(a.wc.ctx).AgentID, a.wc.cfg.MaxSubscriptions).
			WithMaxReplay(a.wc.cfg.Queue.Whole())
	}
	var effects []session.Effect
	switch m := ctx.Message().(type) {
	case *subscribeReq:
		effects = a.se.Subscribe(m.ClientSubscribe)
	case *unsubscribeReq:
		effects = a.se.Unsubscribe(m.inbox)
	case *watchReq:
		effects = a.se.Watch(m.ClientWatch)
	case *unwatchReq:
		effects = a.se.Unwatch(m.conv)
	case *typingReq:
		effects = a.se.Typing(m.conv, m.accountID)
	case *resynced:
		effects = a.se.Resynced(m.inbox)
	case *requestFailed:
		effects = a.se.Fail(m.Failed)
	case *retry:
		if m.Inbox != "" {
			effects = a.se.RetrySubscribe(m.Inbox, m.ID)
		} else {
			effects = a.se.RetryWatch(m.Conv)
		}
	case *actor.Terminated:
		effects = a.se.Terminated(m.Who)
	case *actor.Stopped:
		effects = a.se.Stop()
	default:
		v, _ := actors.StreamMessage(m)
		switch v := v.(type) {
		case actors.InboxSubscribed:
			effects = a.se.Subscribed(v)
		case actors.InboxUpdate:
			effects = a.se.Update(v)
		case actors.ConversationWatched:
			effects = a.se.Watched(v)
		case actors.ConversationEvent:
			effects = a.se.Event(v)
		}
	}
	a.run(ctx, effects)
}

// run carries out effects in order.
func (a *sessionActor) run(ctx actor.Context, effects []session.Effect) {
	wc := a.wc
	for _, e := range effects {
		switch e := e.(type) {
		case session.Push:
			wc.push(e.Frame)
		case session.Forget:
			wc.q.Forget(e.Inbox)
		case session.Done:
			close(e.C)
		case session.ResyncIfStale:
			if wc.q.Stale(e.Inbox) {
				a.run(ctx, a.se.Resynced(e.Inbox))
			}
		case session.Subscribe:
			self, sub := ctx.Self(), e.Subscription
			go func() {
				rctx, cancel := context.WithTimeout(wc.ctx, requestTimeout)
				defer cancel()
				if err := wc.s.engine.Subscribe(rctx, sub); err != nil {
					wc.root.Send(self, &requestFailed{session.Failed{Inbox: sub.InboxID, ID: sub.ID, Err: err}})
				}
			}()
		case session.Watch:
			self, agent := ctx.Self(), principalFrom(wc.ctx).AgentID
			go func() {
				rctx, cancel := context.WithTimeout(wc.ctx, requestTimeout)
				defer cancel()
				if err := wc.s.engine.Watch(rctx, e.AccountID, e.Conv, agent, self, e.Summaries); err != nil {
					wc.root.Send(self, &requestFailed{session.Failed{Conv: e.Conv, ID: e.ID, Err: err}})
				}
			}()
		case session.Unsubscribe:
			ctx.Send(e.PID, actors.UnsubscribeMessage(e.Inbox, ctx.Self(), e.ID))
		case session.Unwatch:
			ctx.Send(e.PID, actors.UnwatchMessage(e.Conv, ctx.Self()))
		case session.Monitor:
			ctx.Watch(e.PID)
		case session.Unmonitor:
			ctx.Unwatch(e.PID)
		case session.Typing:
			msg := actors.TypingMessage(e.AccountID, e.Conv, e.AgentID, ctx.Self())
			if e.PID != nil {
				ctx.Send(e.PID, msg)
			} else {
				_ = wc.s.engine.SendTyping(e.Conv, msg)
			}
		case session.Retry:
			root, self, msg := wc.root, ctx.Self(), &retry{e}
			time.AfterFunc(e.After, func() { root.Send(self, msg) })
		}
	}
}
