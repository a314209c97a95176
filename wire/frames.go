package wire

import (
	"encoding/json"
	"strconv"
)

// Server → client frames. Every one is a struct, so its fields encode in a
// fixed order with "type" first.
type (
	errorFrame struct {
		Type  string          `json:"type"`
		Ref   json.RawMessage `json:"ref,omitempty"`
		Error *Error          `json:"error"`
	}
	pongFrame struct {
		Type string          `json:"type"`
		Ref  json.RawMessage `json:"ref,omitempty"`
	}
	subscribedFrame struct {
		Type    string          `json:"type"`
		Ref     json.RawMessage `json:"ref,omitempty"`
		InboxID string          `json:"inbox_id"`
		Epoch   string          `json:"epoch"`
		Seq     int64           `json:"seq"`
		Resumed bool            `json:"resumed"`
	}
	snapshotFrame struct {
		Type          string          `json:"type"`
		InboxID       string          `json:"inbox_id"`
		Epoch         string          `json:"epoch"`
		Seq           int64           `json:"seq"`
		Conversations json.RawMessage `json:"conversations"`
		Total         int64           `json:"total"`
		Counts        json.RawMessage `json:"counts"`
	}
	resyncFrame struct {
		Type    string `json:"type"`
		InboxID string `json:"inbox_id"`
		Reason  string `json:"reason"`
	}
	watchingFrame struct {
		Type           string          `json:"type"`
		Ref            json.RawMessage `json:"ref,omitempty"`
		ConversationID string          `json:"conversation_id"`
		Version        int64           `json:"version"`
	}
	ackFrame struct {
		Type         string          `json:"type"`
		Ref          json.RawMessage `json:"ref,omitempty"`
		Message      json.RawMessage `json:"message,omitempty"`
		Conversation json.RawMessage `json:"conversation,omitempty"`
	}
	typingFrame struct {
		Type           string `json:"type"`
		ConversationID string `json:"conversation_id"`
		AgentID        string `json:"agent_id"`
	}
	presenceFrame struct {
		Type           string   `json:"type"`
		ConversationID string   `json:"conversation_id"`
		Agents         []string `json:"agents"`
	}
)

// Resync reasons (docs/api.md: "slow consumer, unknown epoch").
const (
	// ReasonSlowConsumer: the connection's queue overflowed.
	ReasonSlowConsumer = "slow_consumer"
	// ReasonEpochChanged: the inbox restarted and its old seqs mean nothing.
	ReasonEpochChanged = "epoch_changed"
	// ReasonGap: an update was lost on its way to this node.
	ReasonGap = "gap"
	// ReasonResumeUnavailable: a subscribe's resume seq is not among the
	// inbox's recent updates (older than it keeps, or ahead of it).
	ReasonResumeUnavailable = "resume_unavailable"
)

func encode(kind Kind, v any) Frame {
	b, err := json.Marshal(v)
	if err != nil {
		// Only this package's structs get here, around raw JSON that an
		// actor encoded: a failure is a programming error the client must
		// hear about rather than a silently missing frame.
		b, _ = json.Marshal(errorFrame{Type: "error", Error: Errorf(CodeInternal, "encode %s frame: %v", kind, err)})
		kind = KindReply
	}
	return Frame{Kind: kind, Data: b}
}

// ErrorFrame is `{"type":"error","ref"?,"error":{"code","message"}}`; err is
// mapped onto the API's codes (ToError).
func ErrorFrame(ref json.RawMessage, err error) Frame {
	return encode(KindReply, errorFrame{Type: "error", Ref: ref, Error: ToError(err)})
}

// Pong answers a ping.
func Pong(ref json.RawMessage) Frame { return encode(KindReply, pongFrame{Type: "pong", Ref: ref}) }

// Subscribed answers a subscribe, before its snapshot or missed updates.
func Subscribed(ref json.RawMessage, inboxID, epoch string, seq int64, resumed bool) Frame {
	return encode(KindReply, subscribedFrame{Type: "subscribed", Ref: ref, InboxID: inboxID, Epoch: epoch, Seq: seq, Resumed: resumed})
}

// Snapshot is the first page of an inbox under a subscription's filter.
// conversations is a JSON array of summaries (nil or null: empty) and counts
// a JSON object, both forwarded as encoded by the inbox actor.
func Snapshot(inboxID, epoch string, seq int64, conversations json.RawMessage, total int64, counts json.RawMessage) Frame {
	if len(conversations) == 0 || string(conversations) == "null" {
		conversations = json.RawMessage("[]")
	}
	if len(counts) == 0 {
		counts = json.RawMessage("null")
	}
	return encode(KindSnapshot, snapshotFrame{Type: "snapshot", InboxID: inboxID, Epoch: epoch, Seq: seq,
		Conversations: conversations, Total: total, Counts: counts})
}

// Resync tells the client that continuity of an inbox's updates was lost;
// a snapshot follows.
func Resync(inboxID, reason string) Frame {
	return encode(KindResync, resyncFrame{Type: "resync", InboxID: inboxID, Reason: reason})
}

// Watching answers a watch with the version the watch starts from.
func Watching(ref json.RawMessage, conversationID string, version int64) Frame {
	return encode(KindReply, watchingFrame{Type: "watching", Ref: ref, ConversationID: conversationID, Version: version})
}

// AckMessage answers a send with the message item.
func AckMessage(ref, message json.RawMessage) Frame {
	return encode(KindReply, ackFrame{Type: "ack", Ref: ref, Message: message})
}

// AckConversation answers an update_conversation with the summary.
func AckConversation(ref, conversation json.RawMessage) Frame {
	return encode(KindReply, ackFrame{Type: "ack", Ref: ref, Conversation: conversation})
}

// Typing is another agent typing in a watched conversation.
func Typing(conversationID, agentID string) Frame {
	return encode(KindTyping, typingFrame{Type: "typing", ConversationID: conversationID, AgentID: agentID})
}

// Presence lists the agents watching a conversation now, sorted by the
// caller.
func Presence(conversationID string, agents []string) Frame {
	if agents == nil {
		agents = []string{}
	}
	return encode(KindReply, presenceFrame{Type: "presence", ConversationID: conversationID, Agents: agents})
}

// Update is an inbox's `update` frame. The summary and counts are the API
// JSON the actors already hold, spliced in as they are: an inbox actor
// renders one frame per change for all its subscribers, and re-encoding (or
// validating) the summary there was measurable. The field order is
// updateFrame's.
func Update(inboxID, epoch string, seq int64, summary, counts json.RawMessage) Frame {
	b := make([]byte, 0, 96+len(inboxID)+len(epoch)+len(summary)+len(counts))
	b = append(b, `{"type":"update","inbox_id":`...)
	b = appendString(b, inboxID)
	b = append(b, `,"epoch":`...)
	b = appendString(b, epoch)
	b = append(b, `,"seq":`...)
	b = strconv.AppendInt(b, seq, 10)
	b = append(b, `,"conversation":`...)
	b = append(b, summary...)
	b = append(b, `,"counts":`...)
	b = append(b, counts...)
	return Frame{Kind: KindUpdate, Data: append(b, '}')}
}

// Item is a new or changed timeline item of a watched conversation, spliced
// in as the conversation actor encoded it (see Update).
func Item(conversationID string, item json.RawMessage) Frame {
	return watched("item", conversationID, item)
}

// ConversationSummary is the frame a watcher that asked for summaries gets
// after every event of the conversation (an extension of docs/api.md's
// watch).
func ConversationSummary(conversationID string, summary json.RawMessage) Frame {
	return watched("conversation", conversationID, summary)
}

// watched is a watched conversation's frame of type typ, whose member of
// the same name is raw, spliced in.
func watched(typ, conversationID string, raw json.RawMessage) Frame {
	b := make([]byte, 0, 64+len(conversationID)+len(raw))
	b = append(append(append(b, `{"type":"`...), typ...), `","conversation_id":`...)
	b = appendString(b, conversationID)
	b = append(append(append(b, `,"`...), typ...), `":`...)
	b = append(b, raw...)
	return Frame{Kind: KindReply, Data: append(b, '}')}
}

func appendString(b []byte, s string) []byte {
	q, _ := json.Marshal(s)
	return append(b, q...)
}
