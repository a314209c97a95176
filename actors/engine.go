package actors

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/switchboard-dev/switchboard/actors/actorpb"
	"github.com/switchboard-dev/switchboard/domain/conversation"
	"github.com/switchboard-dev/switchboard/domain/inbox"
	"github.com/switchboard-dev/switchboard/wire"
)

// Engine is the gateway's door into the actors: it takes domain commands
// and plain values, builds the actor messages, routes them to the owning
// virtual actor and turns replies into Go values and wire.Errors. Nothing
// outside this package builds or reads an actorpb message.
type Engine struct {
	deps *Deps
}

// NewEngine returns an engine over deps (whose node must be set before use).
func NewEngine(deps *Deps) *Engine { return &Engine{deps: deps} }

// Target names the conversation a command is for and who issues it.
type Target struct {
	ConversationID string
	AccountID      string
	InboxID        string
	// ActorID is the agent issuing the command; "" for an integration.
	ActorID string
}

// Result is a conversation actor's answer to a command.
type Result struct {
	Summary   json.RawMessage
	Item      json.RawMessage // nil when the command made no item
	Duplicate bool            // answered from an earlier command with the same key
}

// Inbound delivers a contact's message.
func (e *Engine) Inbound(ctx context.Context, t Target, c conversation.InboundCommand) (Result, error) {
	cmd := t.pb()
	cmd.Command = &actorpb.ConversationCommand_Inbound{Inbound: &actorpb.InboundMessage{
		Contact: contactPB(c.Contact), Body: c.Body, Channel: string(c.Channel), ExternalId: c.ExternalID}}
	return e.command(ctx, cmd)
}

// Call delivers a call event.
func (e *Engine) Call(ctx context.Context, t Target, c conversation.CallCommand) (Result, error) {
	cmd := t.pb()
	cmd.Command = &actorpb.ConversationCommand_Call{Call: &actorpb.CallEvent{
		Contact: contactPB(c.Contact), CallId: c.CallID, State: string(c.State), DurationS: c.DurationS, RecordingUrl: c.RecordingURL}}
	return e.command(ctx, cmd)
}

// Reply appends an agent's reply or note.
func (e *Engine) Reply(ctx context.Context, t Target, c conversation.ReplyCommand) (Result, error) {
	cmd := t.pb()
	cmd.Command = &actorpb.ConversationCommand_Reply{Reply: &actorpb.Reply{
		Body: c.Body, Kind: string(c.Kind), ClientId: c.ClientID, IfVersion: c.IfVersion}}
	return e.command(ctx, cmd)
}

// Update changes status, addressed, assignee or tags.
func (e *Engine) Update(ctx context.Context, t Target, c conversation.UpdateCommand) (Result, error) {
	u := &actorpb.Update{Addressed: c.Addressed, AssigneeId: c.AssigneeID, TagsAdd: c.TagsAdd, TagsRemove: c.TagsRemove, IfVersion: c.IfVersion}
	if c.Status != nil {
		s := string(*c.Status)
		u.Status = &s
	}
	if c.Snooze != nil {
		if c.Snooze.Until != nil {
			us := c.Snooze.Until.UnixMicro()
			u.SnoozeUntilUs = &us
		} else {
			u.ClearSnooze = true
		}
	}
	cmd := t.pb()
	cmd.Command = &actorpb.ConversationCommand_Update{Update: u}
	return e.command(ctx, cmd)
}

// Get reads a conversation's summary.
func (e *Engine) Get(ctx context.Context, t Target) (Result, error) {
	t.ActorID = ""
	cmd := t.pb()
	cmd.Command = &actorpb.ConversationCommand_Get{Get: &actorpb.GetConversation{}}
	return e.command(ctx, cmd)
}

func (t Target) pb() *actorpb.ConversationCommand {
	return &actorpb.ConversationCommand{ConversationId: t.ConversationID, AccountId: t.AccountID, InboxId: t.InboxID, ActorId: t.ActorID}
}

func contactPB(c conversation.Contact) *actorpb.Contact {
	return &actorpb.Contact{Phone: c.Phone, Email: c.Email, Handle: c.Handle, Name: c.Name}
}

// command runs a conversation command. A reply asking for a retry (the
// activation was fenced, or its commit outcome is unknown) is resent: the
// command's idempotency key makes that safe.
func (e *Engine) command(ctx context.Context, cmd *actorpb.ConversationCommand) (Result, error) {
	if cmd.IdempotencyKey == "" {
		cmd.IdempotencyKey = "rq_" + randomID()
	}
	backoff := 5 * time.Millisecond
	for attempt := 0; ; attempt++ {
		r, err := request[*actorpb.ConversationReply](ctx, e.deps, KindConversation, cmd.ConversationId, cmd)
		if err != nil {
			return Result{}, err
		}
		if r.Error != nil && wire.Code(r.Error.Code) == codeRetry && attempt < 8 {
			select {
			case <-ctx.Done():
				return Result{}, unavailable(ctx.Err())
			case <-time.After(backoff):
			}
			backoff *= 2
			continue
		}
		if r.Error != nil {
			return Result{}, fromPB(r.Error)
		}
		return Result{Summary: r.SummaryJson, Item: r.ItemJson, Duplicate: r.Duplicate}, nil
	}
}

// Page is a page of an inbox's list.
type Page struct {
	Conversations json.RawMessage
	NextCursor    string
	Total         int64
	Epoch         string
	Seq           int64
}

// List reads a page of an inbox's conversation list from its actor. An
// inbox holds only its most recent closed conversations: for a list that
// includes closed ones while others exist, it asks for the read model's
// (read_closed), and the page is asked for again with them.
func (e *Engine) List(ctx context.Context, accountID, inboxID, agentID string, q inbox.Query) (Page, error) {
	var closed *actorpb.ClosedRows
	for reads := 0; ; reads++ {
		p, err := request[*actorpb.ConversationPage](ctx, e.deps, KindInbox, inboxID,
			&actorpb.ListConversations{AccountId: accountID, InboxId: inboxID, AgentId: agentID, Filter: filterPB(q), Closed: closed})
		if err != nil {
			return Page{}, err
		}
		if p.Error != nil {
			return Page{}, fromPB(p.Error)
		}
		if p.ReadClosed {
			if closed, err = e.closedRows(ctx, accountID, inboxID, agentID, q, reads, p.Epoch, p.Seq); err != nil {
				return Page{}, err
			}
			continue
		}
		convs := json.RawMessage(p.ConversationsJson)
		if len(convs) == 0 || string(convs) == "null" {
			convs = json.RawMessage("[]")
		}
		return Page{Conversations: convs, NextCursor: p.NextCursor, Total: p.Total, Epoch: p.Epoch, Seq: p.Seq}, nil
	}
}

// maxClosedReads bounds the reads of the read model for one page: a read
// is refused only when a closed conversation the inbox does not hold
// changed, in the page's range, in the milliseconds between the read and
// the inbox's merge.
const maxClosedReads = 3

// closedRows reads the read model's closed conversations a page of q needs,
// after the inbox state (epoch, seq) that asked for them, and decodes them
// here, off the inbox actor. reads counts the earlier reads for this page.
func (e *Engine) closedRows(ctx context.Context, accountID, inboxID, agentID string, q inbox.Query, reads int, epoch string, seq int64) (*actorpb.ClosedRows, error) {
	if reads == maxClosedReads {
		return nil, unavailable(fmt.Errorf("inbox %s: closed conversations changed during %d reads", inboxID, reads))
	}
	cq, ok, err := q.ClosedQuery(agentID)
	if err != nil || !ok {
		// The inbox resolved the query and asked: this node disagrees.
		return nil, &wire.Error{Code: wire.CodeInternal, Message: fmt.Sprintf("inbox %s asked for closed conversations of %+v", inboxID, q)}
	}
	rows, count, err := e.deps.Store.ClosedConversations(ctx, accountID, inboxID, cq)
	if err != nil {
		return nil, unavailable(err)
	}
	out := &actorpb.ClosedRows{Complete: len(rows) < cq.Limit, Epoch: epoch, Seq: seq, SummariesJson: make([][]byte, len(rows)),
		Summaries: make([]*actorpb.SummaryFields, len(rows)), Count: int64(count), Counted: cq.Count}
	for i, raw := range rows {
		var sum conversation.Summary
		if err := json.Unmarshal(raw, &sum); err != nil {
			return nil, &wire.Error{Code: wire.CodeInternal, Message: fmt.Sprintf("inbox %s: closed conversation: %v", inboxID, err)}
		}
		// The row's JSON as the inbox answers it: compact, without the
		// spaces PostgreSQL prints jsonb with.
		var compact bytes.Buffer
		compact.Grow(len(raw))
		if err := json.Compact(&compact, raw); err != nil {
			return nil, &wire.Error{Code: wire.CodeInternal, Message: fmt.Sprintf("inbox %s: closed conversation: %v", inboxID, err)}
		}
		out.Summaries[i], out.SummariesJson[i] = summaryFields(&sum), compact.Bytes()
	}
	return out, nil
}

// closedRowsOf takes the rows closedRows read, for the inbox actor: the
// summaries to merge, and their JSON by id to answer with.
func closedRowsOf(c *actorpb.ClosedRows) (*inbox.ClosedRows, map[string]encodedSummary) {
	if c == nil {
		return nil, nil
	}
	rows := &inbox.ClosedRows{Complete: c.Complete, Epoch: c.Epoch, Seq: c.Seq, Summaries: make([]conversation.Summary, len(c.Summaries)),
		Count: int(c.Count), Counted: c.Counted}
	raw := make(map[string]encodedSummary, len(c.Summaries))
	for i, f := range c.Summaries {
		rows.Summaries[i] = summaryOf(f)
		if i < len(c.SummariesJson) {
			raw[f.Id] = encodedSummary{version: f.Version, raw: c.SummariesJson[i]}
		}
	}
	return rows, raw
}

// Counts reads an inbox's counts from its actor's memory.
func (e *Engine) Counts(ctx context.Context, accountID, inboxID, agentID string) (json.RawMessage, string, int64, error) {
	c, err := request[*actorpb.InboxCounts](ctx, e.deps, KindInbox, inboxID,
		&actorpb.GetCounts{AccountId: accountID, InboxId: inboxID, AgentId: agentID})
	if err != nil {
		return nil, "", 0, err
	}
	if c.Error != nil {
		return nil, "", 0, fromPB(c.Error)
	}
	return c.CountsJson, c.Epoch, c.Seq, nil
}

// request asks the actor kind/id and returns its reply as R: the one place
// a reply is type-asserted.
func request[R any](ctx context.Context, d *Deps, kind, id string, msg any) (R, error) {
	var zero R
	node := d.Node()
	if node == nil {
		return zero, errNoNode
	}
	d.Metrics.Backlog.WithLabelValues(kind).Inc()
	defer d.Metrics.Backlog.WithLabelValues(kind).Dec()
	res, err := node.Request(ctx, kind, id, msg)
	if err != nil {
		return zero, unavailable(err)
	}
	r, ok := res.(R)
	if !ok {
		return zero, unexpected(kind, res)
	}
	return r, nil
}

// filterPB and queryOf convert a list query for the wire and back. A limit
// out of range stays out of range (clamped into int32), for the inbox actor
// to refuse.
func filterPB(q inbox.Query) *actorpb.ListFilter {
	f := &actorpb.ListFilter{Addressed: q.Addressed, Assignee: q.Assignee, Channel: string(q.Channel), Tag: q.Tag,
		Sort: string(q.Sort), Limit: int32(min(max(q.Limit, -1), inbox.MaxLimit+1)), Cursor: q.Cursor}
	for _, s := range q.Statuses {
		f.Statuses = append(f.Statuses, string(s))
	}
	return f
}

func queryOf(f *actorpb.ListFilter) inbox.Query {
	if f == nil {
		return inbox.Query{}
	}
	q := inbox.Query{Addressed: f.Addressed, Assignee: f.Assignee, Channel: conversation.Channel(f.Channel), Tag: f.Tag,
		Sort: inbox.Sort(f.Sort), Limit: int(f.Limit), Cursor: f.Cursor}
	for _, s := range f.Statuses {
		q.Statuses = append(q.Statuses, conversation.Status(s))
	}
	return q
}
