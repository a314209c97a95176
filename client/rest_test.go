package client_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/client"
	"github.com/switchboard-dev/switchboard/internal/poll"
	"github.com/switchboard-dev/switchboard/server"
)

func TestRESTEndToEnd(t *testing.T) {
	n := startNode(t, func(c *server.Config) { c.WebhookAllowPrivate = true })
	tn := newTenant(t, n.URL())
	ctx := context.Background()
	key := tn.key

	// Inbox settings: set, then switch one off with Null.
	ib, err := key.UpdateInbox(ctx, tn.inbox.ID, client.InboxUpdate{
		AutoCloseAfterS: client.Set[int64](3600), SLAFirstResponseS: client.Set[int64](300), AutoAssign: "round_robin"})
	if err != nil {
		t.Fatal(err)
	}
	if ib.AutoCloseAfterS == nil || *ib.AutoCloseAfterS != 3600 || ib.AutoAssign != "round_robin" {
		t.Fatalf("inbox after update: %+v", ib)
	}
	ib, err = key.UpdateInbox(ctx, tn.inbox.ID, client.InboxUpdate{AutoCloseAfterS: client.Null[int64](), AutoAssign: "none"})
	if err != nil {
		t.Fatal(err)
	}
	if ib.AutoCloseAfterS != nil || ib.SLAFirstResponseS == nil || *ib.SLAFirstResponseS != 300 {
		t.Fatalf("Null cleared the wrong settings: %+v", ib)
	}
	// The phone number: set, then removed with Null.
	ib, err = key.UpdateInbox(ctx, tn.inbox.ID, client.InboxUpdate{PhoneNumber: client.Set("+14155550199")})
	if err != nil || ib.PhoneNumber == nil || *ib.PhoneNumber != "+14155550199" || ib.SLAFirstResponseS == nil {
		t.Fatalf("inbox after a new number: %+v, %v", ib, err)
	}
	ib, err = key.UpdateInbox(ctx, tn.inbox.ID, client.InboxUpdate{PhoneNumber: client.Null[string]()})
	if err != nil || ib.PhoneNumber != nil {
		t.Fatalf("inbox after removing its number: %+v, %v", ib, err)
	}
	if got, err := tn.agent.GetInbox(ctx, tn.inbox.ID); err != nil || got.SLAFirstResponseS == nil {
		t.Fatalf("agent reads its inbox: %+v, %v", got, err)
	}
	inboxes, err := tn.agent.ListInboxes(ctx)
	if err != nil || len(inboxes) != 1 || inboxes[0].ID != tn.inbox.ID {
		t.Fatalf("agent's inboxes: %+v, %v", inboxes, err)
	}

	// Agents and tokens.
	if a, err := tn.agent.SetAgentStatus(ctx, tn.agentID, client.AgentAway); err != nil || a.Status != client.AgentAway {
		t.Fatalf("set own status: %+v, %v", a, err)
	}
	if a, err := key.UpdateAgent(ctx, tn.agentID, client.AgentUpdate{Name: "Renamed"}); err != nil || a.Name != "Renamed" || a.Status != client.AgentAway {
		t.Fatalf("rename: %+v, %v", a, err)
	}
	agents, err := key.ListAgents(ctx)
	if err != nil || len(agents) != 1 || agents[0].ID != tn.agentID || agents[0].Status != client.AgentAway || agents[0].Name != "Renamed" {
		t.Fatalf("agents: %+v, %v", agents, err)
	}
	second, err := key.CreateAgentToken(ctx, tn.agentID)
	if err != nil || second == "" {
		t.Fatalf("second token: %q, %v", second, err)
	}
	if _, err := key.WithToken(second).ListInboxes(ctx); err != nil {
		t.Fatalf("the second token works: %v", err)
	}

	// API keys: a new key works until deleted.
	nk, err := key.CreateAPIKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := key.ListAPIKeys(ctx)
	if err != nil || !slices.ContainsFunc(keys, func(k client.APIKey) bool { return k.ID == nk.ID && !k.CreatedAt.IsZero() }) {
		t.Fatalf("keys %+v lack %s: %v", keys, nk.ID, err)
	}
	if err := key.DeleteAPIKey(ctx, nk.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := key.WithToken(nk.APIKey).ListInboxes(ctx); !errors.Is(err, client.ErrUnauthorized) {
		t.Fatalf("a deleted key: %v, want ErrUnauthorized", err)
	}

	// Inbound, idempotent on external_id.
	in := client.InboundMessage{Contact: client.ContactRef{Phone: "+14155550123", Name: "Grace"}, Body: "Where is my order?", ExternalID: "SM1"}
	first, err := key.PostInbound(ctx, tn.inbox.ID, in)
	if err != nil {
		t.Fatal(err)
	}
	if first.Duplicate || first.Message.Direction != client.Inbound || first.Conversation.Version != 1 || first.Message.ExternalID != "SM1" {
		t.Fatalf("first inbound: %+v", first)
	}
	again, err := key.PostInbound(ctx, tn.inbox.ID, in)
	if err != nil || !again.Duplicate || again.Message.ID != first.Message.ID {
		t.Fatalf("repeated external_id: %+v, %v", again, err)
	}
	conv := first.ConversationID

	// A call event.
	call, err := key.PostCall(ctx, tn.inbox.ID, client.CallEvent{Contact: client.ContactRef{Phone: "+14155550123"}, CallID: "CA1", State: client.CallRinging})
	if err != nil || call.ConversationID != conv || call.Conversation.ActiveCall == nil || call.Call.State != client.CallRinging {
		t.Fatalf("call: %+v, %v", call, err)
	}

	// A reply by the agent: a client_id is made up, and repeating it is no duplicate.
	rep, err := tn.agent.Reply(ctx, conv, client.Reply{Body: "On its way!"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Direction != client.Outbound || rep.Status != client.DeliveryPending || rep.ClientID == "" {
		t.Fatalf("reply: %+v", rep)
	}
	rep2, err := tn.agent.Reply(ctx, conv, client.Reply{Body: "On its way!", ClientID: rep.ClientID})
	if err != nil || rep2.ID != rep.ID {
		t.Fatalf("repeated client_id: %+v, %v", rep2, err)
	}
	if _, err := tn.agent.Reply(ctx, conv, client.Reply{Body: "internal", Kind: client.KindNote}); err != nil {
		t.Fatal(err)
	}

	// Delivery status moves forward; a repeat changes nothing.
	dr, err := key.SetDeliveryStatus(ctx, conv, rep.ID, client.DeliveryReport{Status: client.DeliveryDelivered, ProviderMessageID: "SMx"})
	if err != nil || dr.Message.Status != client.DeliveryDelivered || dr.Message.ProviderMessageID != "SMx" {
		t.Fatalf("delivery status: %+v, %v", dr, err)
	}
	dr2, err := key.SetDeliveryStatus(ctx, conv, rep.ID, client.DeliveryReport{Status: client.DeliverySent})
	if err != nil || dr2.Message.Status != client.DeliveryDelivered || dr2.Conversation.Version != dr.Conversation.Version {
		t.Fatalf("a backward report changed something: %+v, %v", dr2, err)
	}

	// Update: assign, tag; then unassign with Null.
	up, err := key.UpdateConversation(ctx, conv, client.ConversationUpdate{AssigneeID: client.Set(tn.agentID), TagsAdd: []string{"vip"}, Status: client.StatusOpen})
	if err != nil || up.AssigneeID == nil || *up.AssigneeID != tn.agentID || !slices.Contains(up.Tags, "vip") {
		t.Fatalf("update: %+v, %v", up, err)
	}
	up2, err := key.UpdateConversation(ctx, conv, client.ConversationUpdate{AssigneeID: client.Null[string](), IfVersion: client.Version(up.Version)})
	if err != nil || up2.AssigneeID != nil || up2.Version != up.Version+1 {
		t.Fatalf("unassign: %+v, %v", up2, err)
	}
	got, err := tn.agent.GetConversation(ctx, conv)
	if err != nil || got.Version != up2.Version || got.Contact.Phone == nil || *got.Contact.Phone != "+14155550123" {
		t.Fatalf("get: %+v, %v", got, err)
	}

	// Timeline, newest first, paged.
	page, err := tn.agent.ListMessages(ctx, conv, client.MessagesQuery{Limit: 2})
	if err != nil || len(page.Messages) != 2 || page.NextBefore == nil || page.Messages[0].Kind != client.KindNote {
		t.Fatalf("messages page: %+v, %v", page, err)
	}
	rest, err := tn.agent.ListMessages(ctx, conv, client.MessagesQuery{Before: *page.NextBefore})
	if err != nil || len(rest.Messages) != 2 || rest.NextBefore != nil {
		t.Fatalf("the rest of the timeline: %+v, %v", rest, err)
	}

	// Lists and counts.
	list, err := tn.agent.ListConversations(ctx, tn.inbox.ID, client.ListQuery{Tag: "vip", Sort: client.SortOldest, Limit: 10})
	if err != nil || len(list.Conversations) != 1 || list.Conversations[0].ID != conv || list.Epoch == "" || list.Total != 1 {
		t.Fatalf("list: %+v, %v", list, err)
	}
	none, err := tn.agent.ListConversations(ctx, tn.inbox.ID, client.ListQuery{Status: []client.Status{client.StatusClosed}})
	if err != nil || len(none.Conversations) != 0 {
		t.Fatalf("closed list: %+v, %v", none, err)
	}
	counts, err := tn.agent.Counts(ctx, tn.inbox.ID)
	if err != nil || counts.Open != 1 || counts.Mine == nil || *counts.Mine != 0 {
		t.Fatalf("counts: %+v, %v", counts, err)
	}

	// Search finds the inbound message once indexed.
	poll.Until(t, 10*time.Second, "the message in search", func() bool {
		res, err := tn.agent.Search(ctx, client.SearchQuery{Q: "order", InboxID: tn.inbox.ID})
		if err != nil {
			t.Fatal(err)
		}
		return len(res.Hits) == 1 && res.Hits[0].MessageID == first.Message.ID && res.Found == 1
	})

	// Webhooks: create, list, list deliveries, delete.
	wh, err := key.CreateWebhook(ctx, client.CreateWebhookRequest{URL: "http://127.0.0.1:9/sb", Events: []client.WebhookEventType{client.WebhookMessageCreated}})
	if err != nil || wh.Secret == "" || len(wh.Webhook.Events) != 1 {
		t.Fatalf("create webhook: %+v, %v", wh, err)
	}
	hooks, err := key.ListWebhooks(ctx)
	if err != nil || len(hooks) != 1 || hooks[0].ID != wh.Webhook.ID {
		t.Fatalf("webhooks: %+v, %v", hooks, err)
	}
	if _, err := key.ListDeliveries(ctx, wh.Webhook.ID, "failed"); err != nil {
		t.Fatal(err)
	}
	if err := key.DeleteWebhook(ctx, wh.Webhook.ID); err != nil {
		t.Fatal(err)
	}

	// Deleting the agent ends its tokens.
	if err := key.DeleteAgent(ctx, tn.agentID); err != nil {
		t.Fatal(err)
	}
	if _, err := tn.agent.ListInboxes(ctx); !errors.Is(err, client.ErrUnauthorized) {
		t.Fatalf("a deleted agent's token: %v", err)
	}
}

func TestTypedErrors(t *testing.T) {
	n := startNode(t)
	tn := newTenant(t, n.URL())
	ctx := context.Background()
	in, err := tn.key.PostInbound(ctx, tn.inbox.ID, client.InboundMessage{Contact: client.ContactRef{Handle: "visitor-1"}, Body: "hi", Channel: client.ChannelChat})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		call   func() error
		is     error
		status int
	}{
		{"unknown conversation", func() error { _, err := tn.key.GetConversation(ctx, "nope"); return err }, client.ErrNotFound, 404},
		{"empty body", func() error {
			_, err := tn.key.PostInbound(ctx, tn.inbox.ID, client.InboundMessage{Contact: client.ContactRef{Phone: "+14155550199"}})
			return err
		}, client.ErrInvalidArgument, 400},
		{"bad credential", func() error { _, err := tn.key.WithToken("sk_wrong").ListInboxes(ctx); return err }, client.ErrUnauthorized, 401},
		{"agent creates an inbox", func() error {
			_, err := tn.agent.CreateInbox(ctx, client.CreateInboxRequest{Name: "mine"})
			return err
		}, client.ErrForbidden, 403},
		{"stale if_version", func() error {
			_, err := tn.agent.Reply(ctx, in.ConversationID, client.Reply{Body: "late", IfVersion: client.Version(in.Conversation.Version + 5)})
			return err
		}, client.ErrConflict, 409},
		{"admin endpoint with a key", func() error { _, err := tn.key.CreateAccount(ctx, "x"); return err }, client.ErrUnauthorized, 401},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			var e *client.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v (%T) is not a *client.Error", err, err)
			}
			if e.Status != tc.status || e.Message == "" || !errors.Is(err, tc.is) {
				t.Fatalf("got %+v, want status %d and %v", e, tc.status, tc.is)
			}
			if errors.Is(err, client.ErrUnavailable) {
				t.Fatalf("%v matches an unrelated sentinel", err)
			}
		})
	}
	// Nothing was written by the refused reply.
	got, err := tn.key.GetConversation(ctx, in.ConversationID)
	if err != nil || got.Version != in.Conversation.Version {
		t.Fatalf("after refusals: %+v, %v", got, err)
	}
}

// counting is a real transport that records the status of every answer.
type counting struct {
	next     http.RoundTripper
	attempts atomic.Int64
	limited  atomic.Int64
}

func (c *counting) RoundTrip(r *http.Request) (*http.Response, error) {
	c.attempts.Add(1)
	res, err := c.next.RoundTrip(r)
	if err == nil && res.StatusCode == http.StatusTooManyRequests {
		c.limited.Add(1)
	}
	return res, err
}

func TestRetryAfter(t *testing.T) {
	// One request per second, bursts of two, for agent tokens.
	n := startNode(t, func(c *server.Config) { c.Limits.AgentRate = 1 })
	tn := newTenant(t, n.URL())
	ctx := context.Background()
	tr := &counting{next: http.DefaultTransport}
	agent := newClient(t, n.URL(), tn.agentToken, client.WithHTTPClient(&http.Client{Transport: tr}))
	noRetry := newClient(t, n.URL(), tn.agentToken, client.WithRetries(0, 0))

	exhaust := func() {
		t.Helper()
		// Spend the burst; the limiter answers 429 once it is gone.
		for {
			_, err := noRetry.ListInboxes(ctx)
			if errors.Is(err, client.ErrRateLimited) {
				var e *client.Error
				errors.As(err, &e)
				if e.RetryAfter < time.Second {
					t.Fatalf("429 without a Retry-After of at least 1 s: %+v", e)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	}

	t.Run("idempotent requests wait and succeed", func(t *testing.T) {
		exhaust()
		tr.attempts.Store(0)
		tr.limited.Store(0)
		if _, err := agent.ListInboxes(ctx); err != nil {
			t.Fatalf("a GET over the limit: %v", err)
		}
		if tr.limited.Load() != 1 || tr.attempts.Load() != 2 {
			t.Fatalf("attempts %d (429s %d), want one 429 then a success", tr.attempts.Load(), tr.limited.Load())
		}
	})

	t.Run("a reply with its client_id is retried without a duplicate", func(t *testing.T) {
		in, err := tn.key.PostInbound(ctx, tn.inbox.ID, client.InboundMessage{Contact: client.ContactRef{Phone: "+14155550177"}, Body: "hello"})
		if err != nil {
			t.Fatal(err)
		}
		exhaust()
		tr.attempts.Store(0)
		tr.limited.Store(0)
		item, err := agent.Reply(ctx, in.ConversationID, client.Reply{Body: "hi there"})
		if err != nil {
			t.Fatal(err)
		}
		if tr.limited.Load() == 0 {
			t.Fatal("the reply was never limited: the test proves nothing")
		}
		page, err := tn.key.ListMessages(ctx, in.ConversationID, client.MessagesQuery{})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Messages) != 2 || page.Messages[0].ID != item.ID {
			t.Fatalf("timeline %+v, want the inbound and one reply", page.Messages)
		}
	})

	t.Run("a request without an idempotency key is not retried", func(t *testing.T) {
		exhaust()
		tr.attempts.Store(0)
		_, err := agent.PostCall(ctx, tn.inbox.ID, client.CallEvent{Contact: client.ContactRef{Phone: "+14155550178"}, CallID: "CA9", State: client.CallRinging})
		if !errors.Is(err, client.ErrRateLimited) || tr.attempts.Load() != 1 {
			t.Fatalf("call event over the limit: %v after %d attempts, want one 429", err, tr.attempts.Load())
		}
	})

	t.Run("a deadline before Retry-After returns the 429 at once", func(t *testing.T) {
		exhaust()
		tr.attempts.Store(0)
		dctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		_, err := agent.ListInboxes(dctx)
		if !errors.Is(err, client.ErrRateLimited) || tr.attempts.Load() != 1 {
			t.Fatalf("got %v after %d attempts, want the 429 itself", err, tr.attempts.Load())
		}
	})
}

func TestNoAnswerIsRetriedForIdempotentRequestsOnly(t *testing.T) {
	// A port nobody listens on: every attempt is refused, as while a node
	// restarts.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	tr := &counting{next: http.DefaultTransport}
	c := newClient(t, "http://"+addr, "sk_x", client.WithHTTPClient(&http.Client{Transport: tr}), client.WithRetries(2, time.Second))
	ctx := context.Background()
	_, err = c.ListInboxes(ctx)
	if err == nil || tr.attempts.Load() != 3 {
		t.Fatalf("GET: %v after %d attempts, want an error after 3", err, tr.attempts.Load())
	}
	var e *client.Error
	if errors.As(err, &e) {
		t.Fatalf("no answer reported as an answer: %v", e)
	}
	tr.attempts.Store(0)
	if _, err := c.PostCall(ctx, "ib", client.CallEvent{CallID: "CA1", State: client.CallRinging}); err == nil || tr.attempts.Load() != 1 {
		t.Fatalf("POST without a key: %v after %d attempts, want an error after 1", err, tr.attempts.Load())
	}
}
