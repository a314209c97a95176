package actors

import (
	"context"
	"errors"
	"github.com/switchboard-dev/switchboard/wire"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/switchboard-dev/switchboard/actors/actorpb"
	"github.com/switchboard-dev/switchboard/domain/conversation"
	"github.com/switchboard-dev/switchboard/persistence"
)

// Automation in the actors: the inbox settings every conversation command
// is decided under, the tick the timer scanner sends, round-robin after a
// contact starts waiting, and the Engine methods the gateway uses for them.

// settingsTTL bounds how long a cached copy of an inbox's settings is used
// without hearing of a change. Changes are announced on
// persistence.SettingsChannel and drop the copy at once on every node
// (FollowSettings); the TTL only covers a listener that is reconnecting.
const settingsTTL = 5 * time.Second

// rearmBatch is how many conversations one re-arm statement touches.
const rearmBatch = 1000

type cachedSettings struct {
	st      conversation.Settings
	version int64
	at      time.Time
}

// settingsCache holds inbox settings for every conversation activation of
// the node. The zero value is ready.
type settingsCache struct {
	mu sync.RWMutex
	m  map[string]cachedSettings
}

func (c *settingsCache) get(inboxID string, minVersion int64, now time.Time) (cachedSettings, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.m[inboxID]
	return e, ok && e.version >= minVersion && now.Sub(e.at) < settingsTTL
}

func (c *settingsCache) put(inboxID string, e cachedSettings) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]cachedSettings)
	}
	if old, ok := c.m[inboxID]; ok && old.version > e.version {
		return
	}
	c.m[inboxID] = e
}

// invalidate drops one inbox's copy, or every copy for "".
func (c *settingsCache) invalidate(inboxID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if inboxID == "" {
		c.m = nil
		return
	}
	delete(c.m, inboxID)
}

// inboxSettings returns the inbox's settings at least at minVersion, and
// their version.
func (d *Deps) inboxSettings(ctx context.Context, inboxID string, minVersion int64) (conversation.Settings, int64, error) {
	now := time.Now()
	if e, ok := d.settings.get(inboxID, minVersion, now); ok {
		return e.st, e.version, nil
	}
	ps, err := d.Store.GetInboxSettings(ctx, inboxID)
	if err != nil {
		return conversation.Settings{}, 0, err
	}
	st := ToSettings(ps)
	d.settings.put(inboxID, cachedSettings{st: st, version: ps.Version, at: now})
	return st, ps.Version, nil
}

// ToSettings converts stored settings into the state machine's.
func ToSettings(ps persistence.InboxSettings) conversation.Settings {
	st := conversation.Settings{AutoAssign: conversation.AutoAssign(ps.AutoAssign)}
	if ps.AutoCloseAfterS != nil {
		st.AutoCloseAfter = time.Duration(*ps.AutoCloseAfterS) * time.Second
	}
	if ps.SLAFirstResponseS != nil {
		st.SLAFirstResponse = time.Duration(*ps.SLAFirstResponseS) * time.Second
	}
	return st
}

// FollowSettings follows inbox settings changes and drops the node's
// cached copies, until ctx ends. Run it once per node.
func (d *Deps) FollowSettings(ctx context.Context) {
	sub := d.Notices.Subscribe(persistence.SettingsChannel)
	defer sub.Close()
	for {
		select {
		case <-ctx.Done():
			return
		case <-sub.Ready():
		}
		n := sub.Take()
		if n.Missed {
			// Whatever was announced while nobody listened is unknown.
			d.settings.invalidate("")
		}
		for _, inboxID := range n.Payloads {
			d.settings.invalidate(inboxID)
		}
	}
}

// commandSettings resolves the settings a command is decided under, and
// their version (the writer stores a due time decided under older settings
// than the inbox's as due now: persistence.Append.SettingsVersion); a tick
// carries the version the scanner saw, so an older cached copy is refreshed.
func (g *conversationGrain) commandSettings(ctx context.Context, cmd *actorpb.ConversationCommand) (conversation.Settings, int64, error) {
	inboxID := cmd.InboxId
	if g.state.Exists() {
		inboxID = g.state.Summary.InboxID
	}
	if inboxID == "" {
		return conversation.Settings{}, 0, nil
	}
	return g.deps.inboxSettings(ctx, inboxID, cmd.GetTick().GetSettingsVersion())
}

// decideTime is the clock a command is decided at: a tick's is at least the
// database time at which the scanner found it due.
func decideTime(cmd *actorpb.ConversationCommand) time.Time {
	now := time.Now()
	if t := cmd.GetTick(); t != nil {
		if db := time.UnixMilli(t.NowMs); db.After(now) {
			return db
		}
	}
	return now
}

// rearm rewrites the due time of a conversation whose tick at now decided
// nothing, so the scanner does not find it due again (an owed assignment
// keeps it due AssignRetry from now).
func (g *conversationGrain) rearm(ctx context.Context, st conversation.Settings, settingsVersion int64, now time.Time) {
	if err := g.deps.Store.SetDue(ctx, g.id, g.state.Version(), g.state.NextDue(st, now), settingsVersion); err != nil {
		g.log.Warn("re-arming the timer failed; the scanner will tick again", "err", err)
	}
}

// autoAssign runs round-robin when the command just handled asked for it:
// the inbox actor names the next available agent (and records its
// rotation), and the answer is this conversation's own event — the
// assignment, or "nobody available", which settles the owed assignment
// too. If the node dies before that event commits, the assignment is still
// owed in the committed state and due within AssignRetry, and the tick
// that comes for it asks again (on whichever node activates it next).
func (g *conversationGrain) autoAssign(ctx actor.Context) {
	if !g.tryAssign {
		return
	}
	g.tryAssign = false
	node := g.deps.Node()
	if node == nil || g.stopped || !g.state.AssignPending || g.deps.dropAssignment(g.id) {
		return
	}
	sum := &g.state.Summary
	rctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := node.Request(rctx, KindInbox, sum.InboxID, &actorpb.NextAssignee{AccountId: sum.AccountID, InboxId: sum.InboxID})
	a, ok := res.(*actorpb.Assignee)
	if err != nil || !ok || a.Error != nil {
		g.log.Warn("round-robin: no answer from the inbox; a tick retries", "inbox", sum.InboxID, "err", errors.Join(err, fromPB(a.GetError())))
		return
	}
	cmd := &actorpb.ConversationCommand{ConversationId: g.id, AccountId: sum.AccountID, InboxId: sum.InboxID,
		ActorId: conversation.ActorAutomation, IdempotencyKey: "rr_" + randomID(),
		Command: &actorpb.ConversationCommand_AutoAssign{AutoAssign: &actorpb.AutoAssign{AgentId: a.AgentId}}}
	reply, notify := g.handle(cmd)
	if reply.Error != nil {
		g.log.Warn("round-robin assignment not committed; a tick retries", "agent", a.AgentId, "err", reply.Error.Message)
		if wire.Code(reply.Error.Code) == codeRetry {
			g.stopped = true
			ctx.Poison(ctx.Self())
		}
		return
	}
	if notify != nil {
		g.notifyInbox(notify)
	}
}

// nextAssignee answers NextAssignee: the rotation's position lives in the
// inboxes row, advanced by the inbox actor, its one writer.
func (g *inboxGrain) nextAssignee(msg *actorpb.NextAssignee) *actorpb.Assignee {
	if err := g.ensure(msg.AccountId); err != nil {
		return &actorpb.Assignee{Error: toInboxError(err)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id, ok, err := g.deps.Store.NextRoundRobin(ctx, g.id)
	if err != nil {
		return &actorpb.Assignee{Error: toPB(err)}
	}
	if !ok {
		return &actorpb.Assignee{}
	}
	return &actorpb.Assignee{AgentId: id}
}

// Tick wakes a conversation the timer scanner found due at dbNow (the
// database's clock), with the inbox settings' version of then.
func (e *Engine) Tick(ctx context.Context, conversationID, accountID, inboxID string, dbNow time.Time, settingsVersion int64) error {
	_, err := e.command(ctx, &actorpb.ConversationCommand{
		ConversationId: conversationID, AccountId: accountID, InboxId: inboxID, ActorId: conversation.ActorAutomation,
		Command: &actorpb.ConversationCommand_Tick{Tick: &actorpb.Tick{NowMs: dbNow.UnixMilli(), SettingsVersion: settingsVersion}},
	})
	return err
}

// UpdateInbox changes an inbox's name and automation settings. When the
// timers' settings change it re-arms the inbox's open conversations in
// bounded batches before answering, so that once it has answered every
// conversation is decided under the new settings by its next tick.
func (e *Engine) UpdateInbox(ctx context.Context, accountID, inboxID string, p persistence.InboxPatch) (persistence.Inbox, persistence.InboxSettings, error) {
	in, st, rearm, err := e.deps.Store.UpdateInbox(ctx, accountID, inboxID, p)
	if err != nil {
		return in, st, err
	}
	e.deps.settings.invalidate(inboxID)
	if rearm {
		if _, err := e.deps.Store.RearmInbox(ctx, inboxID, rearmBatch); err != nil {
			return in, st, err
		}
	}
	return in, st, nil
}
