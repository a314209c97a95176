package actors

import (
	"encoding/json"
	"errors"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/switchboard-dev/switchboard/actors/actorpb"
	"github.com/switchboard-dev/switchboard/domain/inbox"
	"github.com/switchboard-dev/switchboard/wire"
)

// subscriber is a websocket session subscribed to this inbox. Sessions are
// plain actors, possibly on another node; the inbox only ever Sends to them.
type subscriber struct {
	pid     *actor.PID
	id      uint64
	agentID string
	lastSeq int64 // seq of the last update sent to it (prev_seq of the next)
}

// pidOf converts the wire PID.
func pidOf(p *actorpb.Pid) *actor.PID {
	if p == nil || p.Id == "" {
		return nil
	}
	return actor.NewPID(p.Address, p.Id)
}

// pbPID converts a PID for the wire.
func pbPID(p *actor.PID) *actorpb.Pid {
	if p == nil {
		return nil
	}
	return &actorpb.Pid{Address: p.Address, Id: p.Id}
}

func pidKey(p *actor.PID) string { return p.Address + "/" + p.Id }

// subscribe registers a session and Sends it InboxSubscribed: the missed
// updates when it resumes the current epoch from a seq the ring still holds,
// else a snapshot. Both are read in this one message, so there is no gap
// between what the subscriber gets now and the updates that follow.
func (g *inboxGrain) subscribe(ctx actor.Context, msg *actorpb.SubscribeInbox) *actorpb.Ack {
	if err := g.ensure(msg.AccountId); err != nil {
		return &actorpb.Ack{Error: toInboxError(err)}
	}
	pid := pidOf(msg.Subscriber)
	if pid == nil {
		return &actorpb.Ack{Error: pbError(wire.CodeInvalid, "subscriber is required")}
	}
	q := queryOf(msg.Filter)
	q.Cursor = "" // a subscription starts at the first page
	f, sort, limit, _, err := q.Resolve(msg.AgentId)
	if err != nil {
		return &actorpb.Ack{Error: pbError(wire.CodeInvalid, err.Error())}
	}
	key := pidKey(pid)
	if old := g.subs[key]; old != nil && old.id == msg.SubscriptionId {
		// The cluster resent a request we served: the subscriber has its
		// answer already, and a second one would repeat its snapshot.
		return &actorpb.Ack{}
	}
	// What the subscriber gets is settled before anything is registered: a
	// snapshot that needs the read model's closed conversations is asked
	// for again, and the session's current subscription stays meanwhile.
	var missed []inbox.Update
	resumed := false
	if msg.Resume && msg.ResumeEpoch == g.st.Epoch() {
		missed, resumed = g.st.Since(msg.ResumeSeq)
	}
	var page inbox.Page
	var closedJSON map[string]encodedSummary
	if !resumed {
		var closed *inbox.ClosedRows
		closed, closedJSON = closedRowsOf(msg.Closed)
		if page, err = g.st.List(f, sort, limit, "", closed); errors.Is(err, inbox.ErrReadClosed) {
			return &actorpb.Ack{ReadClosed: true, Epoch: g.st.Epoch(), Seq: g.st.Seq()}
		} else if err != nil {
			return &actorpb.Ack{Error: pbError(wire.CodeInvalid, err.Error())}
		}
	}

	if g.subs == nil {
		g.subs = make(map[string]*subscriber)
	}
	if g.subs[key] == nil {
		ctx.Watch(pid)
	}
	sub := &subscriber{pid: pid, id: msg.SubscriptionId, agentID: msg.AgentId}
	g.subs[key] = sub
	res := &actorpb.InboxSubscribed{SubscriptionId: sub.id, InboxId: g.id, Inbox: pbPID(ctx.Self()),
		Epoch: g.st.Epoch(), Seq: g.st.Seq(), Resumed: resumed}
	if resumed {
		res.Updates = g.replay(sub, msg.ResumeSeq, missed)
	} else {
		res.ConversationsJson = g.encodePage(page.Conversations, closedJSON)
		res.Total = int64(page.Total)
		res.CountsJson, _ = json.Marshal(g.st.Counts(sub.agentID))
	}
	sub.lastSeq = g.st.Seq()
	ctx.Send(pid, res)
	return &actorpb.Ack{}
}

// replay renders the missed updates, every one: a subscription's filter
// chooses its snapshot, and its stream is the inbox's whole stream, every
// seq (the client keeps its list by the filter).
func (g *inboxGrain) replay(sub *subscriber, from int64, missed []inbox.Update) []*actorpb.InboxUpdate {
	counts, _ := json.Marshal(g.st.Counts(sub.agentID))
	prev := from
	out := make([]*actorpb.InboxUpdate, 0, len(missed))
	for _, u := range missed {
		sum, _ := json.Marshal(u.Summary)
		out = append(out, &actorpb.InboxUpdate{SubscriptionId: sub.id, InboxId: g.id, Epoch: g.st.Epoch(),
			Seq: u.Seq, PrevSeq: prev, ConversationId: u.Summary.ID, Version: u.Summary.Version,
			FrameJson: wire.Update(g.id, g.st.Epoch(), u.Seq, sum, counts).Data})
		prev = u.Seq
	}
	return out
}

func (g *inboxGrain) unsubscribe(ctx actor.Context, msg *actorpb.UnsubscribeInbox) {
	pid := pidOf(msg.Subscriber)
	if pid == nil {
		return
	}
	key := pidKey(pid)
	if sub := g.subs[key]; sub != nil && (msg.SubscriptionId == 0 || sub.id == msg.SubscriptionId) {
		delete(g.subs, key)
		ctx.Unwatch(pid)
	}
}

func (g *inboxGrain) terminated(msg *actor.Terminated) {
	if msg.Who != nil {
		delete(g.subs, pidKey(msg.Who))
	}
}

// fanout Sends one applied update to every subscriber, whatever its filter:
// a connection that keeps up receives every seq of the inbox (the filter
// chose its snapshot; the client keeps its list by it, and its counts stay
// current). The frame is encoded once per distinct counts (they carry
// "mine"), not per subscriber, and sending never waits.
func (g *inboxGrain) fanout(ctx actor.Context, up inbox.Update, summaryJSON []byte) {
	if len(g.subs) == 0 {
		return
	}
	epoch := g.st.Epoch()
	// A frame differs between agents only by their counts ("mine"), so one
	// is built per distinct counts: agents with nothing assigned share one.
	frames := make(map[inbox.Counts][]byte, 1)
	for _, sub := range g.subs {
		c := g.st.Counts(sub.agentID)
		frame, ok := frames[c]
		if !ok {
			counts, _ := json.Marshal(c)
			frame = wire.Update(g.id, epoch, up.Seq, summaryJSON, counts).Data
			frames[c] = frame
		}
		ctx.Send(sub.pid, &actorpb.InboxUpdate{SubscriptionId: sub.id, InboxId: g.id, Epoch: epoch, Seq: up.Seq,
			PrevSeq: sub.lastSeq, ConversationId: up.Summary.ID, Version: up.Summary.Version, FrameJson: frame})
		sub.lastSeq = up.Seq
	}
}
