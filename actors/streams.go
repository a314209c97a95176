package actors

import (
	"context"
	"encoding/json"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/switchboard-dev/switchboard/actors/actorpb"
	"github.com/switchboard-dev/switchboard/domain/inbox"
	"github.com/switchboard-dev/switchboard/wire"
)

// Live streams. A websocket session is a plain actor on the node holding the
// connection; it registers with inbox and conversation actors through the
// Engine, and they Send it what StreamMessage turns into the plain values
// below. The session never builds or reads an actorpb message itself.

// InboxSubscribed answers a subscription atomically: the missed updates
// (Resumed) or the first page under the filter, at (Epoch, Seq).
type InboxSubscribed struct {
	SubscriptionID uint64
	InboxID        string
	Inbox          *actor.PID // the activation that answered
	Epoch          string
	Seq            int64
	Resumed        bool
	Updates        []InboxUpdate
	Conversations  json.RawMessage
	Total          int64
	Counts         json.RawMessage
}

// InboxUpdate is one `update` frame of a subscription; PrevSeq is the seq of
// the previous update sent to the subscription, to detect a lost message.
type InboxUpdate struct {
	SubscriptionID uint64
	InboxID        string
	Epoch          string
	Seq, PrevSeq   int64
	ConversationID string
	Version        int64
	Frame          []byte
}

// ConversationWatched answers a watch with the version it starts from.
type ConversationWatched struct {
	ConversationID string
	Conversation   *actor.PID
	Version        int64
}

// ConversationEvent is an item, typing or presence frame of a watched
// conversation.
type ConversationEvent struct {
	ConversationID string
	Frame          wire.Frame
	Presence       bool // Frame is the conversation's presence
}

// StreamMessage converts what an inbox or conversation actor Sent a session
// into one of the values above; ok is false for any other message.
func StreamMessage(msg any) (v any, ok bool) {
	switch m := msg.(type) {
	case *actorpb.InboxSubscribed:
		s := InboxSubscribed{SubscriptionID: m.SubscriptionId, InboxID: m.InboxId, Inbox: pidOf(m.Inbox), Epoch: m.Epoch,
			Seq: m.Seq, Resumed: m.Resumed, Conversations: m.ConversationsJson, Total: m.Total, Counts: m.CountsJson}
		for _, u := range m.Updates {
			s.Updates = append(s.Updates, inboxUpdate(u))
		}
		return s, true
	case *actorpb.InboxUpdate:
		return inboxUpdate(m), true
	case *actorpb.ConversationWatched:
		return ConversationWatched{ConversationID: m.ConversationId, Conversation: pidOf(m.Conversation), Version: m.Version}, true
	case *actorpb.ConversationEvent:
		return ConversationEvent{ConversationID: m.ConversationId, Frame: wire.Frame{Kind: wire.Kind(m.FrameKind), Data: m.FrameJson},
			Presence: m.Presence}, true
	}
	return nil, false
}

func inboxUpdate(m *actorpb.InboxUpdate) InboxUpdate {
	return InboxUpdate{SubscriptionID: m.SubscriptionId, InboxID: m.InboxId, Epoch: m.Epoch, Seq: m.Seq, PrevSeq: m.PrevSeq,
		ConversationID: m.ConversationId, Version: m.Version, Frame: m.FrameJson}
}

// Subscription is a session's request to follow an inbox.
type Subscription struct {
	AccountID, InboxID, AgentID string
	Subscriber                  *actor.PID
	ID                          uint64 // the session's generation of this registration
	Query                       inbox.Query
	// Resume from (Epoch, Seq) when the inbox still holds them.
	Resume bool
	Epoch  string
	Seq    int64
}

// Subscribe registers a subscription with its inbox actor, which then Sends
// InboxSubscribed to the subscriber before any update.
//
// A snapshot whose filter includes closed conversations may need the read
// model's first page of them, as a list does (see List).
func (e *Engine) Subscribe(ctx context.Context, s Subscription) error {
	q := s.Query
	q.Cursor = "" // a subscription starts at the first page
	var closed *actorpb.ClosedRows
	for reads := 0; ; reads++ {
		ack, err := request[*actorpb.Ack](ctx, e.deps, KindInbox, s.InboxID, &actorpb.SubscribeInbox{
			AccountId: s.AccountID, InboxId: s.InboxID, AgentId: s.AgentID, Subscriber: pbPID(s.Subscriber),
			SubscriptionId: s.ID, Filter: filterPB(s.Query), Resume: s.Resume, ResumeEpoch: s.Epoch, ResumeSeq: s.Seq,
			Closed: closed})
		if err != nil {
			return err
		}
		if !ack.ReadClosed {
			return fromPB(ack.Error)
		}
		if closed, err = e.closedRows(ctx, s.AccountID, s.InboxID, s.AgentID, q, reads, ack.Epoch, ack.Seq); err != nil {
			return err
		}
	}
}

// Watch registers a watcher with a conversation actor, which then Sends
// ConversationWatched to it before any event.
func (e *Engine) Watch(ctx context.Context, accountID, conversationID, agentID string, watcher *actor.PID, summaries bool) error {
	ack, err := request[*actorpb.Ack](ctx, e.deps, KindConversation, conversationID, &actorpb.WatchConversation{
		AccountId: accountID, ConversationId: conversationID, AgentId: agentID, Watcher: pbPID(watcher), Summaries: summaries})
	if err != nil {
		return err
	}
	return fromPB(ack.Error)
}

// UnsubscribeMessage is what a subscriber Sends its inbox actor to end a
// subscription (id 0: whichever it holds).
func UnsubscribeMessage(inboxID string, subscriber *actor.PID, id uint64) any {
	return &actorpb.UnsubscribeInbox{InboxId: inboxID, Subscriber: pbPID(subscriber), SubscriptionId: id}
}

// UnwatchMessage is what a watcher Sends its conversation actor to stop.
func UnwatchMessage(conversationID string, watcher *actor.PID) any {
	return &actorpb.UnwatchConversation{ConversationId: conversationID, Watcher: pbPID(watcher)}
}

// TypingMessage is an agent typing; watcher (the sender's session) does not
// get its own typing back.
func TypingMessage(accountID, conversationID, agentID string, watcher *actor.PID) any {
	return &actorpb.Typing{AccountId: accountID, ConversationId: conversationID, AgentId: agentID, Watcher: pbPID(watcher)}
}

// SendTyping Sends a typing message to a conversation actor by identity, for
// a session that does not watch it (and so holds no PID).
func (e *Engine) SendTyping(conversationID string, msg any) error {
	node := e.deps.Node()
	if node == nil {
		return errNoNode
	}
	return node.Send(KindConversation, conversationID, msg)
}
