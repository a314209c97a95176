package actors

import (
	"context"
	"fmt"
	"github.com/switchboard-dev/switchboard/wire"

	"github.com/switchboard-dev/switchboard/actors/actorpb"
	"github.com/switchboard-dev/switchboard/domain/conversation"
)

// loadStatusTarget gives a delivery status command the message it names:
// the state keeps only recent calls in memory, so the message is read from
// the items table. The actor is the conversation's only writer, so what it
// reads there is current.
func (g *conversationGrain) loadStatusTarget(ctx context.Context, c *conversation.StatusCommand) error {
	if c == nil || c.MessageID == "" || !g.state.Exists() {
		return nil
	}
	it, found, err := g.deps.Store.FindItem(ctx, g.id, c.MessageID)
	if err != nil {
		return fmt.Errorf("load message %s: %w", c.MessageID, err)
	}
	if found {
		c.Current = &it
	}
	return nil
}

// loadForgottenCall reads a call's item from PostgreSQL when the state has
// forgotten calls and does not remember this one.
func (g *conversationGrain) loadForgottenCall(ctx context.Context, c *conversation.CallCommand) error {
	if c == nil || !g.state.ForgetsCalls() {
		return nil
	}
	if _, ok := g.state.Call(c.CallID); ok {
		return nil
	}
	it, found, err := g.deps.Store.FindCall(ctx, g.id, c.CallID)
	if err != nil {
		return fmt.Errorf("load call %s: %w", c.CallID, err)
	}
	if found {
		c.Earlier = &it
	}
	return nil
}

// unchangedItem is the item a command that changed nothing answers with: a
// delivery status report that is not a step forward answers the message as
// it is.
func unchangedItem(c conversation.Command) *conversation.Item {
	if c.Status != nil {
		return c.Status.Current
	}
	return nil
}

// ReportStatus records a carrier's delivery report for an outbound message
// and answers the message and the conversation as they are afterwards.
func (e *Engine) ReportStatus(ctx context.Context, accountID, inboxID, conversationID, messageID, status, errorCode, providerMessageID string) (Result, error) {
	if messageID == "" {
		return Result{}, &wire.Error{Code: wire.CodeNotFound, Message: "message not found"}
	}
	res, err := e.command(ctx, &actorpb.ConversationCommand{
		ConversationId: conversationID, AccountId: accountID, InboxId: inboxID,
		Command: &actorpb.ConversationCommand_MessageStatus{MessageStatus: &actorpb.MessageStatus{
			MessageId: messageID, Status: status, ErrorCode: errorCode, ProviderMessageId: providerMessageID}},
	})
	if err == nil && len(res.Item) == 0 {
		return Result{}, &wire.Error{Code: wire.CodeInternal, Message: "status report answered without the message"}
	}
	return res, err
}
