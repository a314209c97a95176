package actors

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	protocluster "github.com/asynkron/protoactor-go/cluster"

	"github.com/switchboard-dev/switchboard/actors/actorpb"
	"github.com/switchboard-dev/switchboard/domain/conversation"
	"github.com/switchboard-dev/switchboard/domain/presence"
	"github.com/switchboard-dev/switchboard/persistence"
	"github.com/switchboard-dev/switchboard/wire"
)

// conversationGrain is one activation of a conversation. It holds the
// authoritative state in memory; every event is committed (group commit,
// fenced by epoch) before it is applied, acknowledged and sent to the inbox.
type conversationGrain struct {
	deps *Deps
	id   string
	log  *slog.Logger

	state   *conversation.State
	sumJSON []byte // state.Summary encoded, nil until needed: one encoding per version
	epoch   int64
	loaded  bool
	dirty   int // events since the last snapshot
	stopped bool

	watchers   map[string]*watcher  // websocket sessions, by PID
	presence   presence.Set         // the agents behind the watchers
	lastTyping map[string]time.Time // agent → last typing forwarded

	// tryAssign: round-robin owes an assignment (State.AssignPending) and
	// this command is when to ask for it — the event that made it owed, or
	// a tick retrying it (automation.go) — once the reply has gone out.
	tryAssign bool
	// undelivered is the newest summary the inbox has not acknowledged; it
	// is sent again until it is, or a newer one replaces it (inbox.go keeps
	// only higher versions, so repeats are harmless).
	undelivered *actorpb.SummaryChanged
	retryIn     time.Duration // backoff before the next redelivery
	retrying    bool          // a redelivery is scheduled
	// announce: the activation just loaded, and its predecessor may have
	// died between a commit and its delivery; the current summary goes to
	// the inbox once.
	announce bool
}

// redeliverSummary wakes the grain to send its undelivered summary again.
type redeliverSummary struct{}

// Summary redelivery: each attempt waits at most deliveryAttempt (the
// cluster request retries inside it), then backs off from retryFirst up to
// retryMax. An inbox that recovers is therefore current again within about
// retryMax plus one delivery (README, "An inbox cannot stay stale").
const (
	deliveryAttempt = 3 * time.Second
	retryFirst      = 50 * time.Millisecond
	retryMax        = time.Second
)

// NewConversationKind is the cluster kind of conversation actors.
func NewConversationKind(deps *Deps) *protocluster.Kind {
	deps.Config.defaults()
	props := actor.PropsFromProducer(func() actor.Actor {
		return &conversationGrain{deps: deps}
	}, actor.WithReceiverMiddleware(recoverMiddleware(deps, KindConversation, func(err error) any {
		return &actorpb.ConversationReply{Error: pbError(codeRetry, err.Error())}
	})))
	return protocluster.NewKind(KindConversation, deps.withDispatcher(props))
}

func (g *conversationGrain) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *protocluster.ClusterInit:
		g.id = msg.Identity.Identity
		g.log = g.deps.Log.With("conversation", g.id)
		g.deps.Metrics.activated(KindConversation, 1)
		ctx.SetReceiveTimeout(g.deps.Config.IdleTimeout)
		// Loading is lazy (first command) so that a database hiccup during
		// activation becomes an error reply rather than a broken actor.
	case *actor.ReceiveTimeout:
		if len(g.watchers) > 0 || g.undelivered != nil {
			// Watched conversations stay active: passivating would cut
			// their watchers' stream for nothing. Neither does one whose
			// inbox has not acknowledged its summary: its redelivery would
			// stop with it.
			ctx.SetReceiveTimeout(g.deps.Config.IdleTimeout)
			return
		}
		g.deps.Metrics.Passivations.Inc()
		g.snapshot()
		g.stopped = true
		ctx.Poison(ctx.Self())
	case *actor.Stopped:
		if g.id != "" {
			g.snapshot()
			if g.undelivered != nil {
				// A last attempt; if it fails, the next activation
				// announces its summary when it loads.
				_ = g.notifyInbox(g.undelivered)
			}
			g.deps.Metrics.activated(KindConversation, -1)
		}
	case redeliverSummary:
		g.retrying = false
		g.tryDeliver(ctx)
	case *actorpb.ConversationCommand:
		if g.stopped {
			ctx.Respond(&actorpb.ConversationReply{Error: pbError(codeRetry, "conversation activation is stopping")})
			return
		}
		reply, notify := g.handle(msg)
		ctx.Respond(reply)
		if reply.Error != nil && wire.Code(reply.Error.Code) == codeRetry {
			// Fenced or unknown outcome: this activation's memory can no
			// longer be trusted; the next request activates a fresh one.
			g.stopped = true
			ctx.Poison(ctx.Self())
			return
		}
		if notify != nil {
			g.publishItem(ctx, reply.ItemJson)
			g.publishSummary(ctx, notify.SummaryJson)
			g.deliver(ctx, notify)
		} else if g.announce && g.state.Exists() {
			st := g.state.Summary
			g.deliver(ctx, &actorpb.SummaryChanged{AccountId: st.AccountID, InboxId: st.InboxID, ConversationId: g.id,
				Version: st.Version, SummaryJson: g.summaryJSON(), WasStatus: string(st.Status), Summary: summaryFields(&st)})
		}
		g.autoAssign(ctx)
		g.announce = false
	case *actorpb.WatchConversation:
		ctx.Respond(g.watch(ctx, msg))
	case *actorpb.UnwatchConversation:
		g.unwatch(ctx, pidOf(msg.Watcher), false)
	case *actorpb.Typing:
		g.typing(ctx, msg)
	case *actor.Terminated:
		g.unwatch(ctx, msg.Who, true)
	}
}

// load restores the state: claim a new epoch (fencing out any older
// activation), then snapshot + journal tail. It never replays the whole history.
func (g *conversationGrain) load(ctx context.Context) error {
	start := time.Now()
	a, err := g.deps.Store.Activate(ctx, g.id)
	if err != nil {
		return err
	}
	st := &conversation.State{}
	if a.Snapshot != nil {
		if err := json.Unmarshal(a.Snapshot, st); err != nil {
			return fmt.Errorf("decode snapshot at version %d: %w", a.SnapshotVersion, err)
		}
		if st.Version() != a.SnapshotVersion {
			return fmt.Errorf("snapshot stored at version %d holds version %d", a.SnapshotVersion, st.Version())
		}
	}
	for i := range a.Events {
		conversation.Apply(st, &a.Events[i])
	}
	if st.Version() != a.Head {
		return fmt.Errorf("restored version %d but head is at %d", st.Version(), a.Head)
	}
	g.state, g.sumJSON, g.epoch, g.loaded = st, nil, a.Epoch, true
	g.announce = st.Exists()
	g.dirty = len(a.Events)
	g.deps.Metrics.JournalReplay.Observe(float64(len(a.Events)))
	g.deps.Metrics.ActivationTime.Observe(time.Since(start).Seconds())
	return nil
}

// snapshot hands the state to the persistence actor and goes on: the write
// is off this actor's path, and a lost snapshot only lengthens the journal
// tail the next activation reads.
func (g *conversationGrain) snapshot() {
	if !g.loaded || g.dirty == 0 {
		return
	}
	raw, err := json.Marshal(g.state)
	if err != nil {
		g.log.Warn("snapshot not encoded; the journal still has every event", "err", err)
		return
	}
	if g.deps.Writer.SaveSnapshot(g.id, g.state.Version(), raw) {
		g.dirty = 0
	}
}

func (g *conversationGrain) handle(cmd *actorpb.ConversationCommand) (*actorpb.ConversationReply, *actorpb.SummaryChanged) {
	ctx, cancel := context.WithTimeout(context.Background(), g.deps.Config.CommitTimeout)
	defer cancel()
	if !g.loaded {
		if err := g.load(ctx); err != nil {
			g.log.Error("activation failed", "err", err)
			return &actorpb.ConversationReply{Error: pbError(wire.CodeUnavailable, "conversation unavailable: "+err.Error())}, nil
		}
	}
	st := g.state
	// Tenancy: an existing conversation answers only its own account.
	if st.Exists() && (cmd.AccountId != st.Summary.AccountID || (cmd.InboxId != "" && cmd.InboxId != st.Summary.InboxID)) {
		return &actorpb.ConversationReply{Error: pbError(wire.CodeNotFound, "conversation not found")}, nil
	}
	if _, ok := cmd.Command.(*actorpb.ConversationCommand_Get); ok {
		if !st.Exists() {
			return &actorpb.ConversationReply{Error: pbError(wire.CodeNotFound, "conversation not found")}, nil
		}
		return g.reply(nil, false), nil
	}
	if ref, ok := st.SeenKey(cmd.IdempotencyKey); ok {
		return g.replayed(ctx, ref.ItemSeq), nil
	}
	dc, keys, err := toCommand(cmd)
	if err != nil {
		return &actorpb.ConversationReply{Error: toPB(err)}, nil
	}
	settings, settingsVersion, err := g.commandSettings(ctx, cmd)
	if err != nil {
		return &actorpb.ConversationReply{Error: toPB(err)}, nil
	}
	dc.Settings = settings
	if err := g.loadStatusTarget(ctx, dc.Status); err != nil {
		return &actorpb.ConversationReply{Error: toPB(err)}, nil
	}
	if err := g.loadForgottenCall(ctx, dc.Call); err != nil {
		return &actorpb.ConversationReply{Error: toPB(err)}, nil
	}
	now := decideTime(cmd)
	ev, err := conversation.Decide(st, dc, now, newItemID)
	if err != nil {
		// A client's resend (same external_id or client_id) whose first
		// delivery committed is answered from that commit, though the
		// conversation moved on since: its if_version, or a contact's
		// opt-out, refuses the command now, not then.
		if len(keys) > 0 && refusedByState(err) {
			if r, found := g.committed(ctx, keys); found {
				return r, nil
			}
		}
		return &actorpb.ConversationReply{Error: toPB(err)}, nil
	}
	if ev == nil { // nothing changes
		if dc.Tick != nil {
			g.rearm(ctx, settings, settingsVersion, now)
			g.tryAssign = st.AssignPending
		}
		if dc.Assign != nil && st.NobodyAvailable() {
			g.dirty++
			g.snapshot()
			g.rearm(ctx, settings, settingsVersion, now)
		}
		return g.reply(unchangedItem(dc), false), nil
	}
	was := st.Summary.Status // "" for a new conversation
	next := conversation.Next(st, ev)
	ev.Summary = &next.Summary // for journal consumers (webhooks)
	// Encoded once here for every consumer: the journal and read-model rows,
	// the reply, the inbox and its websockets all carry these bytes.
	sumJSON, itemJSON := encodeOnce(&next.Summary, ev.Item)
	err = g.deps.Writer.Append(ctx, persistence.Append{
		Epoch: g.epoch, Event: *ev, Summary: next.Summary, ContactKey: next.ContactKey, Item: ev.Item, Keys: keys,
		DueAt: next.NextDue(settings, ev.At), SettingsVersion: settingsVersion, SummaryJSON: sumJSON, ItemJSON: itemJSON,
	})
	switch {
	case err == nil:
	case errors.Is(err, persistence.ErrDuplicate):
		return g.duplicate(ctx, keys), nil
	case errors.Is(err, persistence.ErrInvalid):
		// Refused for this command's own values; nothing was written and
		// the state in memory is still the committed one.
		return &actorpb.ConversationReply{Error: pbError(wire.CodeInvalid, "a value of this request cannot be stored")}, nil
	case errors.Is(err, persistence.ErrFenced):
		g.deps.Metrics.Fenced.Inc()
		g.log.Warn("append fenced: a newer activation owns this conversation; stopping", "epoch", g.epoch)
		return &actorpb.ConversationReply{Error: pbError(codeRetry, err.Error())}, nil
	default:
		// The outcome is unknown (the commit may have happened): the state
		// is reloaded from PostgreSQL by a fresh activation.
		// The database's text stays in the log: it may be about another
		// append of the same batch.
		g.log.Error("append failed", "err", err)
		return &actorpb.ConversationReply{Error: pbError(codeRetry, "commit outcome unknown")}, nil
	}
	g.tryAssign = next.AssignPending && (!st.AssignPending || dc.Tick != nil)
	conversation.Remember(next, ev) // committed: st, which shares its memory, is dropped
	g.state, g.sumJSON = next, sumJSON
	g.dirty++
	if g.dirty >= g.deps.Config.SnapshotEvery {
		g.snapshot()
	}
	reply := &actorpb.ConversationReply{SummaryJson: g.summaryJSON(), ItemJson: itemJSON}
	if itemJSON == nil && ev.Item != nil {
		reply.ItemJson, _ = json.Marshal(ev.Item)
	}
	return reply, &actorpb.SummaryChanged{AccountId: next.Summary.AccountID, InboxId: next.Summary.InboxID,
		ConversationId: g.id, Version: next.Version(), SummaryJson: reply.SummaryJson, WasStatus: string(was),
		Summary: summaryFields(&next.Summary)}
}

func (g *conversationGrain) reply(item *conversation.Item, dup bool) *actorpb.ConversationReply {
	r := &actorpb.ConversationReply{Duplicate: dup, SummaryJson: g.summaryJSON()}
	if item != nil {
		r.ItemJson, _ = json.Marshal(item)
	}
	return r
}

// summaryJSON is the current summary encoded, encoding it at most once per
// version.
func (g *conversationGrain) summaryJSON() []byte {
	if g.sumJSON == nil {
		g.sumJSON, _ = encodeOnce(&g.state.Summary, nil)
	}
	return g.sumJSON
}

// encodeOnce encodes a new summary and its item; nil for what fails to
// encode, which the writer then encodes itself and reports.
func encodeOnce(sum *conversation.Summary, item *conversation.Item) (sumJSON, itemJSON []byte) {
	sumJSON = shared(sum.AppendJSON(make([]byte, 0, sum.JSONSizeHint())))
	if item != nil {
		itemJSON = shared(item.AppendJSON(make([]byte, 0, item.JSONSizeHint())))
	}
	return sumJSON, itemJSON
}

// shared makes an encoding bytes that many goroutines may hold at once:
// capped at their length, so a holder's append copies instead of writing
// into a spare byte another holder shares. Nil if the encoding failed (the
// writer then encodes itself and reports it).
func shared(b []byte, err error) []byte {
	if err != nil {
		return nil
	}
	return b[:len(b):len(b)]
}

// replayed answers a command delivered twice from the item it produced.
// The idempotency key is the engine's own, so a second delivery is the
// cluster or the engine retrying (a timeout, a lost reply, a fenced
// activation), not the client repeating itself: it keeps the first
// attempt's meaning and is not reported as a duplicate. Only a
// client-supplied key seen before (external_id, client_id) is.
func (g *conversationGrain) replayed(ctx context.Context, itemSeq int64) *actorpb.ConversationReply {
	if itemSeq == 0 {
		return g.reply(nil, false)
	}
	item, err := g.deps.Store.GetItemAt(ctx, g.id, itemSeq)
	if err != nil {
		return &actorpb.ConversationReply{Error: toPB(err)}
	}
	return g.reply(&item, false)
}

// duplicate answers a command whose external_id or client_id was used
// before: with the original message, wherever it lives.
func (g *conversationGrain) duplicate(ctx context.Context, keys []persistence.IdempotencyKey) *actorpb.ConversationReply {
	if r, found := g.committed(ctx, keys); found {
		return r
	}
	return &actorpb.ConversationReply{Error: pbError(codeRetry, "duplicate key vanished")}
}

// committed answers with what the first command of one of keys committed,
// if one did (found); the reply is an error reply when looking it up failed.
func (g *conversationGrain) committed(ctx context.Context, keys []persistence.IdempotencyKey) (r *actorpb.ConversationReply, found bool) {
	for _, k := range keys {
		convID, version, found, err := g.deps.Store.LookupIdempotency(ctx, k.Scope, k.Key)
		if err != nil {
			return &actorpb.ConversationReply{Error: toPB(err)}, true
		}
		if !found {
			continue
		}
		item, err := g.deps.Store.GetItemAt(ctx, convID, version)
		if err != nil {
			return &actorpb.ConversationReply{Error: toPB(err)}, true
		}
		if convID == g.id {
			return g.reply(&item, true), true
		}
		sum, err := g.deps.Store.GetSummary(ctx, convID)
		if err != nil {
			return &actorpb.ConversationReply{Error: toPB(err)}, true
		}
		r := &actorpb.ConversationReply{Duplicate: true}
		r.SummaryJson, _ = json.Marshal(sum)
		r.ItemJson, _ = json.Marshal(item)
		return r, true
	}
	return nil, false
}

// refusedByState: Decide refused the command for what the conversation is
// now (a stale if_version, an opted-out contact), not for its own values.
func refusedByState(err error) bool {
	var optedOut conversation.ErrOptedOut
	return errors.Is(err, conversation.ErrConflict) || errors.As(err, &optedOut)
}

// deliver makes msg the summary the inbox must acknowledge and sends it.
func (g *conversationGrain) deliver(ctx actor.Context, msg *actorpb.SummaryChanged) {
	if p := g.undelivered; p != nil {
		// msg supersedes a summary the inbox never acknowledged, so the
		// inbox's last known status is that one's base.
		msg.WasStatus = p.WasStatus
	}
	g.undelivered = msg
	g.tryDeliver(ctx)
}

// tryDeliver sends the undelivered summary; on failure it schedules another
// attempt with backoff, so an active inbox cannot stay behind the read model
// for longer than the failure lasts plus about retryMax.
func (g *conversationGrain) tryDeliver(ctx actor.Context) {
	msg := g.undelivered
	if msg == nil {
		return
	}
	if err := g.notifyInbox(msg); err == nil {
		g.undelivered, g.retryIn = nil, 0
		return
	}
	g.retryIn = min(max(2*g.retryIn, retryFirst), retryMax)
	if g.retrying {
		return
	}
	g.retrying = true
	self, root := ctx.Self(), ctx.ActorSystem().Root
	time.AfterFunc(g.retryIn, func() { root.Send(self, redeliverSummary{}) })
}

// notifyInbox sends a summary to the inbox actor once (the cluster request
// retries within deliveryAttempt) and reports whether it was acknowledged.
// The conversation waits for it, so one conversation's summaries reach its
// inbox in version order.
func (g *conversationGrain) notifyInbox(msg *actorpb.SummaryChanged) error {
	node := g.deps.Node()
	if node == nil {
		return errNoNode
	}
	err := g.deps.beforeDelivery(msg)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), deliveryAttempt)
		defer cancel()
		var res any
		res, err = node.Request(ctx, KindInbox, msg.InboxId, msg)
		if _, ok := res.(*actorpb.SummaryAck); err == nil && !ok {
			err = fmt.Errorf("inbox answered %T", res)
		}
	}
	if err != nil {
		g.deps.Metrics.InboxDelivery.WithLabelValues("failed").Inc()
		g.log.Warn("summary not delivered to inbox; will retry", "inbox", msg.InboxId, "version", msg.Version, "err", err)
		return err
	}
	g.deps.Metrics.InboxDelivery.WithLabelValues("ok").Inc()
	return nil
}

// toCommand converts the wire command into the state machine's, with the
// client-supplied keys that must be unique in PostgreSQL.
func toCommand(pb *actorpb.ConversationCommand) (conversation.Command, []persistence.IdempotencyKey, error) {
	cmd := conversation.Command{IdempotencyKey: pb.IdempotencyKey, AccountID: pb.AccountId, InboxID: pb.InboxId, ActorID: pb.ActorId}
	var keys []persistence.IdempotencyKey
	switch c := pb.Command.(type) {
	case *actorpb.ConversationCommand_Inbound:
		m := c.Inbound
		cmd.Inbound = &conversation.InboundCommand{Contact: contactOf(m.Contact), Body: m.Body,
			Channel: conversation.Channel(m.Channel), ExternalID: m.ExternalId}
		if m.ExternalId != "" {
			keys = append(keys, persistence.IdempotencyKey{Scope: "ext:" + pb.InboxId, Key: m.ExternalId})
		}
	case *actorpb.ConversationCommand_Call:
		m := c.Call
		cmd.Call = &conversation.CallCommand{Contact: contactOf(m.Contact), CallID: m.CallId,
			State: conversation.CallState(m.State), DurationS: m.DurationS, RecordingURL: m.RecordingUrl}
	case *actorpb.ConversationCommand_Reply:
		m := c.Reply
		cmd.Reply = &conversation.ReplyCommand{Body: m.Body, Kind: conversation.ItemKind(m.Kind), ClientID: m.ClientId, IfVersion: m.IfVersion}
		if m.ClientId != "" {
			keys = append(keys, persistence.IdempotencyKey{Scope: "client:" + pb.ConversationId, Key: m.ClientId})
		}
	case *actorpb.ConversationCommand_Update:
		m := c.Update
		u := &conversation.UpdateCommand{IfVersion: m.IfVersion}
		if m.Status != nil {
			s := conversation.Status(*m.Status)
			u.Status = &s
		}
		u.Addressed, u.AssigneeID = m.Addressed, m.AssigneeId
		u.TagsAdd, u.TagsRemove = m.TagsAdd, m.TagsRemove
		u.Snooze = snoozeOf(m)
		cmd.Update = u
	case *actorpb.ConversationCommand_Tick:
		cmd.Tick = &conversation.TickCommand{}
	case *actorpb.ConversationCommand_AutoAssign:
		cmd.Assign = &conversation.AssignCommand{AgentID: c.AutoAssign.AgentId}
	case *actorpb.ConversationCommand_MessageStatus:
		m := c.MessageStatus
		cmd.Status = &conversation.StatusCommand{MessageID: m.MessageId, Status: conversation.DeliveryStatus(m.Status),
			ErrorCode: m.ErrorCode, ProviderMessageID: m.ProviderMessageId}
	default:
		return cmd, nil, fmt.Errorf("%w: empty command", conversation.ErrInvalid)
	}
	return cmd, keys, nil
}

func snoozeOf(m *actorpb.Update) *conversation.SnoozeRequest {
	switch {
	case m.SnoozeUntilUs != nil:
		t := time.UnixMicro(*m.SnoozeUntilUs).UTC()
		return &conversation.SnoozeRequest{Until: &t}
	case m.SnoozeUntilMs != nil:
		t := time.UnixMilli(*m.SnoozeUntilMs).UTC()
		return &conversation.SnoozeRequest{Until: &t}
	case m.ClearSnooze:
		return &conversation.SnoozeRequest{}
	}
	return nil
}

func contactOf(c *actorpb.Contact) conversation.Contact {
	if c == nil {
		return conversation.Contact{}
	}
	return conversation.Contact{Phone: c.Phone, Email: c.Email, Handle: c.Handle, Name: c.Name}
}

func newItemID() string { return "msg_" + randomID() }

func randomID() string {
	var b [15]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%x", b[:])
}
