package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
)

// p escapes one path segment.
func p(s string) string { return url.PathEscape(s) }

// --- Accounts (admin token) ---

// CreateAccount creates an account and its first API key (admin token).
func (c *Client) CreateAccount(ctx context.Context, name string) (*NewAccount, error) {
	var out NewAccount
	_, err := c.do(ctx, request{method: http.MethodPost, path: "/v1/admin/accounts", body: map[string]string{"name": name}, out: &out})
	return ret(&out, err)
}

// PauseIndexer stalls search indexing, for search-backend maintenance
// (admin token).
func (c *Client) PauseIndexer(ctx context.Context) error { return c.setIndexer(ctx, "pause") }

// ResumeIndexer restarts search indexing (admin token).
func (c *Client) ResumeIndexer(ctx context.Context) error { return c.setIndexer(ctx, "resume") }

func (c *Client) setIndexer(ctx context.Context, verb string) error {
	// Pausing a paused indexer (or resuming a running one) changes nothing.
	_, err := c.do(ctx, request{method: http.MethodPost, path: "/v1/admin/indexer/" + verb, body: struct{}{}, retry: true})
	return err
}

// --- Inboxes ---

// CreateInbox creates an inbox (account key).
func (c *Client) CreateInbox(ctx context.Context, in CreateInboxRequest) (*Inbox, error) {
	var out Inbox
	_, err := c.do(ctx, request{method: http.MethodPost, path: "/v1/inboxes", body: in, out: &out})
	return ret(&out, err)
}

// ListInboxes lists the caller's inboxes (an agent sees its own).
func (c *Client) ListInboxes(ctx context.Context) ([]Inbox, error) {
	var out struct {
		Inboxes []Inbox `json:"inboxes"`
	}
	_, err := c.do(ctx, request{method: http.MethodGet, path: "/v1/inboxes", retry: true, out: &out})
	return out.Inboxes, err
}

// GetInbox reads an inbox with its automation settings.
func (c *Client) GetInbox(ctx context.Context, inboxID string) (*Inbox, error) {
	var out Inbox
	_, err := c.do(ctx, request{method: http.MethodGet, path: "/v1/inboxes/" + p(inboxID), retry: true, out: &out})
	return ret(&out, err)
}

// UpdateInbox changes an inbox's name, phone number and automation settings
// (account key).
func (c *Client) UpdateInbox(ctx context.Context, inboxID string, u InboxUpdate) (*Inbox, error) {
	var out Inbox
	// Setting absolute values twice is the same as once.
	_, err := c.do(ctx, request{method: http.MethodPatch, path: "/v1/inboxes/" + p(inboxID), body: u, retry: true, out: &out})
	return ret(&out, err)
}

// --- Agents and their tokens ---

// CreateAgent creates an agent of the given inboxes and its first token
// (account key).
func (c *Client) CreateAgent(ctx context.Context, a CreateAgentRequest) (*NewAgent, error) {
	if a.InboxIDs == nil {
		a.InboxIDs = []string{}
	}
	var out NewAgent
	_, err := c.do(ctx, request{method: http.MethodPost, path: "/v1/agents", body: a, out: &out})
	return ret(&out, err)
}

// ListAgents lists the account's agents (an agent token: itself only).
func (c *Client) ListAgents(ctx context.Context) ([]Agent, error) {
	var out struct {
		Agents []Agent `json:"agents"`
	}
	_, err := c.do(ctx, request{method: http.MethodGet, path: "/v1/agents", retry: true, out: &out})
	return out.Agents, err
}

// SetAgentStatus sets an agent's availability (an agent: its own only).
func (c *Client) SetAgentStatus(ctx context.Context, agentID string, status AgentStatus) (*Agent, error) {
	return c.UpdateAgent(ctx, agentID, AgentUpdate{Status: status})
}

// UpdateAgent changes an agent: its status (an agent: its own only), its
// name and email (account key).
func (c *Client) UpdateAgent(ctx context.Context, agentID string, u AgentUpdate) (*Agent, error) {
	var out Agent
	_, err := c.do(ctx, request{method: http.MethodPatch, path: "/v1/agents/" + p(agentID), body: u, retry: true, out: &out})
	return ret(&out, err)
}

// DeleteAgent deletes an agent: its tokens stop working, its websockets
// close, its assignments stay (account key).
func (c *Client) DeleteAgent(ctx context.Context, agentID string) error {
	_, err := c.do(ctx, request{method: http.MethodDelete, path: "/v1/agents/" + p(agentID), retry: true})
	return err
}

// CreateAgentToken issues a further token for an agent (account key).
func (c *Client) CreateAgentToken(ctx context.Context, agentID string) (string, error) {
	var out struct {
		Token string `json:"token"`
	}
	_, err := c.do(ctx, request{method: http.MethodPost, path: "/v1/agents/" + p(agentID) + "/tokens", out: &out})
	return out.Token, err
}

// RevokeAgentTokens revokes every token of an agent (account key).
func (c *Client) RevokeAgentTokens(ctx context.Context, agentID string) error {
	_, err := c.do(ctx, request{method: http.MethodDelete, path: "/v1/agents/" + p(agentID) + "/tokens", retry: true})
	return err
}

// --- API keys (account key) ---

// CreateAPIKey makes a further API key of the caller's account.
func (c *Client) CreateAPIKey(ctx context.Context) (*NewAPIKey, error) {
	var out NewAPIKey
	_, err := c.do(ctx, request{method: http.MethodPost, path: "/v1/api-keys", out: &out})
	return ret(&out, err)
}

// ListAPIKeys lists the account's keys (never the keys themselves).
func (c *Client) ListAPIKeys(ctx context.Context) ([]APIKey, error) {
	var out struct {
		Keys []APIKey `json:"api_keys"`
	}
	_, err := c.do(ctx, request{method: http.MethodGet, path: "/v1/api-keys", retry: true, out: &out})
	return out.Keys, err
}

// DeleteAPIKey revokes a key at once.
func (c *Client) DeleteAPIKey(ctx context.Context, keyID string) error {
	_, err := c.do(ctx, request{method: http.MethodDelete, path: "/v1/api-keys/" + p(keyID), retry: true})
	return err
}

// --- Conversations ---

// PostInbound records a contact's inbound message. With an ExternalID it is
// retried on 429/503, and a repeat answers the original (Duplicate).
func (c *Client) PostInbound(ctx context.Context, inboxID string, m InboundMessage) (*InboundResult, error) {
	var out InboundResult
	status, err := c.do(ctx, request{method: http.MethodPost, path: "/v1/inboxes/" + p(inboxID) + "/messages",
		body: m, retry: m.ExternalID != "", out: &out})
	out.Duplicate = status == http.StatusOK
	return ret(&out, err)
}

// PostCall records a call event; one CallID is one timeline item, updated
// through its states. Not retried: a call event has no idempotency key.
func (c *Client) PostCall(ctx context.Context, inboxID string, e CallEvent) (*CallResult, error) {
	var out CallResult
	_, err := c.do(ctx, request{method: http.MethodPost, path: "/v1/inboxes/" + p(inboxID) + "/calls", body: e, out: &out})
	return ret(&out, err)
}

// Reply posts an agent's reply or internal note. An empty ClientID is
// filled with a random one, so the reply is retried safely.
func (c *Client) Reply(ctx context.Context, conversationID string, r Reply) (*Item, error) {
	if r.ClientID == "" {
		r.ClientID = newClientID()
	}
	var out Item
	_, err := c.do(ctx, request{method: http.MethodPost, path: "/v1/conversations/" + p(conversationID) + "/messages",
		body: r, retry: true, out: &out})
	return ret(&out, err)
}

// UpdateConversation changes a conversation's status, assignee, tags,
// snooze or addressed flag. Not retried (tags and status changes are
// events, and a retry after a lost answer could trip IfVersion).
func (c *Client) UpdateConversation(ctx context.Context, conversationID string, u ConversationUpdate) (*Conversation, error) {
	var out Conversation
	_, err := c.do(ctx, request{method: http.MethodPatch, path: "/v1/conversations/" + p(conversationID), body: u, out: &out})
	return ret(&out, err)
}

// GetConversation reads a conversation summary.
func (c *Client) GetConversation(ctx context.Context, conversationID string) (*Conversation, error) {
	var out Conversation
	_, err := c.do(ctx, request{method: http.MethodGet, path: "/v1/conversations/" + p(conversationID), retry: true, out: &out})
	return ret(&out, err)
}

// ListMessages reads a page of a conversation's timeline, newest first.
func (c *Client) ListMessages(ctx context.Context, conversationID string, q MessagesQuery) (*MessagePage, error) {
	v := url.Values{}
	if q.Before > 0 {
		v.Set("before", strconv.FormatInt(q.Before, 10))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	var out MessagePage
	_, err := c.do(ctx, request{method: http.MethodGet, path: "/v1/conversations/" + p(conversationID) + "/messages",
		query: v, retry: true, out: &out})
	return ret(&out, err)
}

// ListConversations reads a page of an inbox's conversations.
func (c *Client) ListConversations(ctx context.Context, inboxID string, q ListQuery) (*ConversationPage, error) {
	var out ConversationPage
	_, err := c.do(ctx, request{method: http.MethodGet, path: "/v1/inboxes/" + p(inboxID) + "/conversations",
		query: q.values(), retry: true, out: &out})
	return ret(&out, err)
}

// Counts reads an inbox's counts.
func (c *Client) Counts(ctx context.Context, inboxID string) (*Counts, error) {
	var out Counts
	_, err := c.do(ctx, request{method: http.MethodGet, path: "/v1/inboxes/" + p(inboxID) + "/counts", retry: true, out: &out})
	return ret(&out, err)
}

// Search searches every message of the caller's inboxes.
func (c *Client) Search(ctx context.Context, q SearchQuery) (*SearchResult, error) {
	v := url.Values{"q": {q.Q}}
	if q.InboxID != "" {
		v.Set("inbox_id", q.InboxID)
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	var out SearchResult
	_, err := c.do(ctx, request{method: http.MethodGet, path: "/v1/search", query: v, retry: true, out: &out})
	return ret(&out, err)
}

// SetDeliveryStatus reports how an outbound message went (account key).
// Reports only move a message's status forward, so a repeat changes nothing
// and the call is retried.
func (c *Client) SetDeliveryStatus(ctx context.Context, conversationID, messageID string, r DeliveryReport) (*DeliveryResult, error) {
	var out DeliveryResult
	_, err := c.do(ctx, request{method: http.MethodPost,
		path: "/v1/conversations/" + p(conversationID) + "/messages/" + p(messageID) + "/status",
		body: r, retry: true, out: &out})
	return ret(&out, err)
}

// --- Webhooks (account key) ---

// CreateWebhook registers an endpoint; keep the answer's Secret.
func (c *Client) CreateWebhook(ctx context.Context, w CreateWebhookRequest) (*NewWebhook, error) {
	var out NewWebhook
	_, err := c.do(ctx, request{method: http.MethodPost, path: "/v1/webhooks", body: w, out: &out})
	return ret(&out, err)
}

// ListWebhooks lists the account's webhooks.
func (c *Client) ListWebhooks(ctx context.Context) ([]Webhook, error) {
	var out struct {
		Webhooks []Webhook `json:"webhooks"`
	}
	_, err := c.do(ctx, request{method: http.MethodGet, path: "/v1/webhooks", retry: true, out: &out})
	return out.Webhooks, err
}

// DeleteWebhook deletes a webhook; no delivery attempt to it starts after.
func (c *Client) DeleteWebhook(ctx context.Context, webhookID string) error {
	_, err := c.do(ctx, request{method: http.MethodDelete, path: "/v1/webhooks/" + p(webhookID), retry: true})
	return err
}

// ListDeliveries lists a webhook's deliveries with status "pending" or
// "failed" ("" for both), oldest first: every page of them, read 1,000 at a
// time.
func (c *Client) ListDeliveries(ctx context.Context, webhookID, status string) ([]Delivery, error) {
	var all []Delivery
	cursor := ""
	for {
		v := url.Values{"limit": {"1000"}}
		if status != "" {
			v.Set("status", status)
		}
		if cursor != "" {
			v.Set("cursor", cursor)
		}
		var out struct {
			Deliveries []Delivery `json:"deliveries"`
			NextCursor *string    `json:"next_cursor"`
		}
		if _, err := c.do(ctx, request{method: http.MethodGet, path: "/v1/webhooks/" + p(webhookID) + "/deliveries",
			query: v, retry: true, out: &out}); err != nil {
			return all, err
		}
		all = append(all, out.Deliveries...)
		if out.NextCursor == nil || *out.NextCursor == "" {
			return all, nil
		}
		cursor = *out.NextCursor
	}
}

// RetryDelivery sends a failed delivery again.
func (c *Client) RetryDelivery(ctx context.Context, webhookID, eventID string) error {
	_, err := c.do(ctx, request{method: http.MethodPost,
		path: "/v1/webhooks/" + p(webhookID) + "/deliveries/" + p(eventID) + "/retry"})
	return err
}

// ret returns nil and the error on failure, so no caller reads a zero
// value as an answer.
func ret[T any](v *T, err error) (*T, error) {
	if err != nil {
		return nil, err
	}
	return v, nil
}
