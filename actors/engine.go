package actors

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/switchboard-dev/switchboard/actors/actorpb"
)

// Engine is the gateway's door into the actors: it routes a request to the
// owning virtual actor and turns replies into Go values and errors.
type Engine struct {
	deps *Deps
}

// NewEngine returns an engine over deps (whose node must be set before use).
func NewEngine(deps *Deps) *Engine { return &Engine{deps: deps} }

// Result is a conversation actor's answer to a command.
type Result struct {
	Summary   json.RawMessage
	Item      json.RawMessage // nil when the command made no item
	Duplicate bool            // answered from an earlier command with the same key
}

// Command runs a conversation command. A reply asking for a retry (the
// activation was fenced, or its commit outcome is unknown) is resent: the
// command's idempotency key makes that safe.
func (e *Engine) Command(ctx context.Context, cmd *actorpb.ConversationCommand) (Result, error) {
	node := e.deps.Node()
	if node == nil {
		return Result{}, errNoNode
	}
	if cmd.IdempotencyKey == "" {
		cmd.IdempotencyKey = "rq_" + randomID()
	}
	backoff := 5 * time.Millisecond
	for attempt := 0; ; attempt++ {
		e.deps.Metrics.Backlog.WithLabelValues(KindConversation).Inc()
		res, err := node.Request(ctx, KindConversation, cmd.ConversationId, cmd)
		e.deps.Metrics.Backlog.WithLabelValues(KindConversation).Dec()
		if err != nil {
			return Result{}, &Error{Code: CodeUnavailable, Message: err.Error()}
		}
		r, ok := res.(*actorpb.ConversationReply)
		if !ok {
			return Result{}, unexpected(KindConversation, res)
		}
		if r.Error != nil && r.Error.Code == codeRetry && attempt < 8 {
			select {
			case <-ctx.Done():
				return Result{}, &Error{Code: CodeUnavailable, Message: ctx.Err().Error()}
			case <-time.After(backoff):
			}
			backoff *= 2
			continue
		}
		if r.Error != nil {
			if r.Error.Code == codeRetry {
				r.Error.Code = CodeUnavailable
			}
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

// List reads a page of an inbox's conversation list from its actor.
func (e *Engine) List(ctx context.Context, accountID, inboxID, agentID, query string) (Page, error) {
	res, err := e.inboxRequest(ctx, inboxID, &actorpb.ListConversations{AccountId: accountID, InboxId: inboxID, AgentId: agentID, Query: query})
	if err != nil {
		return Page{}, err
	}
	p, ok := res.(*actorpb.ConversationPage)
	if !ok {
		return Page{}, unexpected(KindInbox, res)
	}
	if p.Error != nil {
		return Page{}, fromPB(p.Error)
	}
	convs := json.RawMessage(p.ConversationsJson)
	if len(convs) == 0 || string(convs) == "null" {
		convs = json.RawMessage("[]")
	}
	return Page{Conversations: convs, NextCursor: p.NextCursor, Total: p.Total, Epoch: p.Epoch, Seq: p.Seq}, nil
}

// Counts reads an inbox's counts from its actor's memory.
func (e *Engine) Counts(ctx context.Context, accountID, inboxID, agentID string) (json.RawMessage, string, int64, error) {
	res, err := e.inboxRequest(ctx, inboxID, &actorpb.GetCounts{AccountId: accountID, InboxId: inboxID, AgentId: agentID})
	if err != nil {
		return nil, "", 0, err
	}
	c, ok := res.(*actorpb.InboxCounts)
	if !ok {
		return nil, "", 0, unexpected(KindInbox, res)
	}
	if c.Error != nil {
		return nil, "", 0, fromPB(c.Error)
	}
	return c.CountsJson, c.Epoch, c.Seq, nil
}

func (e *Engine) inboxRequest(ctx context.Context, inboxID string, msg any) (any, error) {
	node := e.deps.Node()
	if node == nil {
		return nil, errNoNode
	}
	e.deps.Metrics.Backlog.WithLabelValues(KindInbox).Inc()
	defer e.deps.Metrics.Backlog.WithLabelValues(KindInbox).Dec()
	res, err := node.Request(ctx, KindInbox, inboxID, msg)
	if err != nil {
		return nil, &Error{Code: CodeUnavailable, Message: err.Error()}
	}
	return res, nil
}

// AsError extracts an actor error's code.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
