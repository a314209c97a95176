package actors

import (
	"context"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/switchboard-dev/switchboard/actors/actorpb"
	"github.com/switchboard-dev/switchboard/wire"
)

// watcher is a websocket session watching this conversation.
type watcher struct {
	pid *actor.PID
	// summaries: the watcher asked for the summary after every event.
	summaries bool
}

// watch registers a session for item and typing frames and Sends it
// ConversationWatched (with the version it starts from) before any of them.
func (g *conversationGrain) watch(ctx actor.Context, msg *actorpb.WatchConversation) *actorpb.Ack {
	if g.stopped {
		return &actorpb.Ack{Error: pbError(codeRetry, "conversation activation is stopping")}
	}
	if !g.loaded {
		lctx, cancel := context.WithTimeout(context.Background(), g.deps.Config.CommitTimeout)
		err := g.load(lctx)
		cancel()
		if err != nil {
			g.log.Error("activation failed", "err", err)
			return &actorpb.Ack{Error: pbError(wire.CodeUnavailable, "conversation unavailable: "+err.Error())}
		}
	}
	if !g.state.Exists() || msg.AccountId != g.state.Summary.AccountID {
		return &actorpb.Ack{Error: pbError(wire.CodeNotFound, "conversation not found")}
	}
	pid := pidOf(msg.Watcher)
	if pid == nil {
		return &actorpb.Ack{Error: pbError(wire.CodeInvalid, "watcher is required")}
	}
	key := pidKey(pid)
	if w := g.watchers[key]; w != nil {
		w.summaries = msg.Summaries
		// The client watching again (or the cluster resending a request):
		// the current version and presence again; a session that waits
		// for no answer ignores the version.
		ctx.Send(pid, &actorpb.ConversationWatched{ConversationId: g.id, Conversation: pbPID(ctx.Self()), Version: g.state.Version()})
		ctx.Send(pid, g.presenceEvent())
		return &actorpb.Ack{}
	}
	if g.watchers == nil {
		g.watchers = make(map[string]*watcher)
	}
	g.watchers[key] = &watcher{pid: pid, summaries: msg.Summaries}
	ctx.Watch(pid)
	ctx.Send(pid, &actorpb.ConversationWatched{ConversationId: g.id, Conversation: pbPID(ctx.Self()), Version: g.state.Version()})
	// Presence follows watching: to everyone when the agents changed, else
	// to the newcomer only (a second tab, an account key).
	if g.presence.Add(key, msg.AgentId) {
		g.publishPresence(ctx)
	} else {
		ctx.Send(pid, g.presenceEvent())
	}
	return &actorpb.Ack{}
}

// unwatch ends a watch: the session asked, or it terminated (its
// connection closed, or its node died: protoactor then delivers Terminated
// for every PID it held there).
func (g *conversationGrain) unwatch(ctx actor.Context, pid *actor.PID, terminated bool) {
	if pid == nil {
		return
	}
	key := pidKey(pid)
	if g.watchers[key] != nil {
		delete(g.watchers, key)
		if !terminated {
			ctx.Unwatch(pid)
		}
	}
	if g.presence.Remove(key) {
		g.publishPresence(ctx)
	}
}

func (g *conversationGrain) presenceEvent() *actorpb.ConversationEvent {
	ev := conversationEvent(g.id, wire.Presence(g.id, g.presence.Agents()))
	ev.Presence = true
	return ev
}

// publishPresence Sends the agents watching now, encoded once, to every
// watcher.
func (g *conversationGrain) publishPresence(ctx actor.Context) {
	if len(g.watchers) == 0 {
		return
	}
	ev := g.presenceEvent()
	for _, w := range g.watchers {
		ctx.Send(w.pid, ev)
	}
}

// typingInterval bounds how often one agent's typing is forwarded.
func (g *conversationGrain) typingInterval() time.Duration {
	if d := g.deps.Config.TypingInterval; d > 0 {
		return d
	}
	return 2 * time.Second
}

// typing forwards an agent's typing indicator to the other watchers, at most
// once per agent per interval: a browser sends one per keystroke.
func (g *conversationGrain) typing(ctx actor.Context, msg *actorpb.Typing) {
	if len(g.watchers) == 0 || !g.loaded || !g.state.Exists() || msg.AccountId != g.state.Summary.AccountID {
		return
	}
	now := time.Now()
	if last, ok := g.lastTyping[msg.AgentId]; ok && now.Sub(last) < g.typingInterval() {
		return
	}
	if g.lastTyping == nil {
		g.lastTyping = make(map[string]time.Time)
	}
	g.lastTyping[msg.AgentId] = now
	from := ""
	if p := pidOf(msg.Watcher); p != nil {
		from = pidKey(p)
	}
	ev := conversationEvent(g.id, wire.Typing(g.id, msg.AgentId))
	for key, w := range g.watchers {
		// Not to the typist's own sessions: another tab of the same agent
		// is not another agent.
		if key != from && (msg.AgentId == "" || g.presence.AgentOf(key) != msg.AgentId) {
			ctx.Send(w.pid, ev)
		}
	}
}

// publishItem Sends the committed item, encoded once, to every watcher.
func (g *conversationGrain) publishItem(ctx actor.Context, item []byte) {
	if len(g.watchers) == 0 || len(item) == 0 {
		return
	}
	ev := conversationEvent(g.id, wire.Item(g.id, item))
	for _, w := range g.watchers {
		ctx.Send(w.pid, ev)
	}
}

// publishSummary Sends the summary after an event, encoded once, to the
// watchers that asked for it: a client showing the conversation keeps its
// header current even when no subscription of its carries the conversation.
func (g *conversationGrain) publishSummary(ctx actor.Context, summary []byte) {
	if len(g.watchers) == 0 || len(summary) == 0 {
		return
	}
	var ev *actorpb.ConversationEvent
	for _, w := range g.watchers {
		if !w.summaries {
			continue
		}
		if ev == nil {
			ev = conversationEvent(g.id, wire.ConversationSummary(g.id, summary))
		}
		ctx.Send(w.pid, ev)
	}
}

func conversationEvent(id string, f wire.Frame) *actorpb.ConversationEvent {
	return &actorpb.ConversationEvent{ConversationId: id, FrameJson: f.Data, FrameKind: uint32(f.Kind)}
}
