package client_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/client"
	"github.com/switchboard-dev/switchboard/persistence/pgtest"
)

// events reads a Stream's events and checks, for every one it sees, the
// version guard: no conversation is ever delivered at a version it was
// delivered at before, or older.
type events struct {
	t    *testing.T
	s    *client.Stream
	last map[string]int64
	log  []client.Event
}

func watchEvents(t *testing.T, s *client.Stream) *events {
	return &events{t: t, s: s, last: map[string]int64{}}
}

func (e *events) check(ev client.Event) {
	e.t.Helper()
	e.log = append(e.log, ev)
	if ev.Type == client.EventConversation {
		c := ev.Conversation
		if c.Version <= e.last[c.ID] {
			e.t.Fatalf("conversation %s delivered at version %d after %d", c.ID, c.Version, e.last[c.ID])
		}
		e.last[c.ID] = c.Version
	}
}

// next returns the first event (from now) that match accepts.
func (e *events) next(what string, match func(client.Event) bool) client.Event {
	e.t.Helper()
	timeout := time.NewTimer(15 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case ev, ok := <-e.s.Events():
			if !ok {
				e.t.Fatalf("stream ended waiting for %s (err %v)", what, e.s.Err())
			}
			e.check(ev)
			if match(ev) {
				return ev
			}
		case <-timeout.C:
			e.t.Fatalf("timed out waiting for %s; saw %s", what, e.describe())
		}
	}
}

func (e *events) describe() string {
	var b strings.Builder
	for _, ev := range e.log {
		fmt.Fprintf(&b, "%s", ev.Type)
		switch ev.Type {
		case client.EventState:
			fmt.Fprintf(&b, "(%s)", ev.State)
		case client.EventConversation:
			fmt.Fprintf(&b, "(%s v%d)", ev.Conversation.ID, ev.Conversation.Version)
		}
		b.WriteString(" ")
	}
	return b.String()
}

func state(s client.ConnState) func(client.Event) bool {
	return func(ev client.Event) bool { return ev.Type == client.EventState && ev.State == s }
}

func conversationAt(id string, version int64) func(client.Event) bool {
	return func(ev client.Event) bool {
		return ev.Type == client.EventConversation && ev.Conversation.ID == id && ev.Conversation.Version >= version
	}
}

func TestStreamResumesAfterTheConnectionIsCut(t *testing.T) {
	n := startNode(t)
	tn := newTenant(t, n.URL())
	ctx := context.Background()
	px := newProxy(t, strings.TrimPrefix(n.URL(), "http://"))
	s, err := newClient(t, px.URL(), tn.agentToken).Connect(ctx, client.StreamOptions{MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ev := watchEvents(t, s)
	ev.next("live", state(client.StateLive))

	first, err := tn.key.PostInbound(ctx, tn.inbox.ID, client.InboundMessage{Contact: client.ContactRef{Phone: "+14155550101"}, Body: "before"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Subscribe(ctx, tn.inbox.ID, nil); err != nil {
		t.Fatal(err)
	}
	snap := ev.next("the snapshot", func(e client.Event) bool { return e.Type == client.EventSnapshot })
	if len(snap.Conversations) != 1 || snap.Conversations[0].ID != first.ConversationID || snap.Counts == nil || snap.Total != 1 {
		t.Fatalf("snapshot: %+v", snap)
	}
	second, err := tn.key.PostInbound(ctx, tn.inbox.ID, client.InboundMessage{Contact: client.ContactRef{Phone: "+14155550101"}, Body: "live"})
	if err != nil {
		t.Fatal(err)
	}
	ev.next("the live update", conversationAt(first.ConversationID, second.Conversation.Version))

	// The network fails; what happens meanwhile must arrive after the
	// reconnect, by resuming rather than by a fresh snapshot.
	cutAt := len(ev.log)
	px.cut()
	ev.next("reconnecting", state(client.StateReconnecting))
	missed1, err := tn.key.PostInbound(ctx, tn.inbox.ID, client.InboundMessage{Contact: client.ContactRef{Phone: "+14155550101"}, Body: "missed one"})
	if err != nil {
		t.Fatal(err)
	}
	missed2, err := tn.key.PostInbound(ctx, tn.inbox.ID, client.InboundMessage{Contact: client.ContactRef{Phone: "+14155550102"}, Body: "missed two"})
	if err != nil {
		t.Fatal(err)
	}
	ev.next("resumed", func(e client.Event) bool {
		if e.Type == client.EventState && e.State == client.StateResynced {
			t.Fatalf("resynced instead of resuming: %s", ev.describe())
		}
		return e.Type == client.EventState && e.State == client.StateResumed
	})
	ev.next("the first missed update", conversationAt(first.ConversationID, missed1.Conversation.Version))
	ev.next("the second missed update", conversationAt(missed2.ConversationID, missed2.Conversation.Version))
	for _, e := range ev.log[cutAt:] {
		if e.Type == client.EventSnapshot || e.Type == client.EventResync {
			t.Fatalf("a %s after the reconnect, not a resume: %s", e.Type, ev.describe())
		}
	}

	// The guard: a summary applied by the caller (as a REST answer would be)
	// is never delivered again by the stream. Apply the next version before
	// the server makes it, so that its update frame cannot arrive first.
	next := missed2.Conversation
	next.Version++
	if !s.Apply(next) {
		t.Fatal("Apply refused a newer version")
	}
	if s.Apply(next) {
		t.Fatal("Apply took the same version twice")
	}
	up, err := tn.key.UpdateConversation(ctx, missed2.ConversationID, client.ConversationUpdate{TagsAdd: []string{"guarded"}})
	if err != nil {
		t.Fatal(err)
	}
	if up.Version != next.Version {
		t.Fatalf("the update made v%d, want v%d", up.Version, next.Version)
	}
	// The update's own frame (the applied version) is dropped; the next
	// one comes.
	later, err := tn.key.UpdateConversation(ctx, missed2.ConversationID, client.ConversationUpdate{TagsAdd: []string{"after"}})
	if err != nil {
		t.Fatal(err)
	}
	got := ev.next("the update after the applied one", func(e client.Event) bool {
		return e.Type == client.EventConversation && e.Conversation.ID == missed2.ConversationID
	})
	if got.Conversation.Version != later.Version {
		t.Fatalf("after Apply(v%d) the stream delivered v%d, want v%d", next.Version, got.Conversation.Version, later.Version)
	}
}

func TestStreamWatchSendAndErrors(t *testing.T) {
	n := startNode(t)
	tn := newTenant(t, n.URL())
	ctx := context.Background()
	px := newProxy(t, strings.TrimPrefix(n.URL(), "http://"))
	s, err := newClient(t, px.URL(), tn.agentToken).Connect(ctx, client.StreamOptions{MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ev := watchEvents(t, s)

	in, err := tn.key.PostInbound(ctx, tn.inbox.ID, client.InboundMessage{Contact: client.ContactRef{Handle: "v-1"}, Body: "hello", Channel: client.ChannelChat})
	if err != nil {
		t.Fatal(err)
	}
	conv := in.ConversationID
	v, err := s.Watch(ctx, conv)
	if err != nil || v != in.Conversation.Version {
		t.Fatalf("watch: version %d, %v; want %d", v, err, in.Conversation.Version)
	}

	item, err := s.Send(ctx, conv, client.Reply{Body: "hi from the stream"})
	if err != nil {
		t.Fatal(err)
	}
	if item.Direction != client.Outbound || item.ClientID == "" {
		t.Fatalf("ack: %+v", item)
	}
	ev.next("the reply as an item", func(e client.Event) bool { return e.Type == client.EventItem && e.Item.ID == item.ID })

	// A repeated client_id is the same message: what a replay after a lost
	// ack relies on.
	again, err := s.Send(ctx, conv, client.Reply{Body: "hi from the stream", ClientID: item.ClientID})
	if err != nil || again.ID != item.ID {
		t.Fatalf("repeated send: %+v, %v", again, err)
	}

	up, err := s.UpdateConversation(ctx, conv, client.ConversationUpdate{Status: client.StatusClosed, TagsAdd: []string{"done"}})
	if err != nil || up.Status != client.StatusClosed {
		t.Fatalf("update over the stream: %+v, %v", up, err)
	}
	if _, err := s.UpdateConversation(ctx, conv, client.ConversationUpdate{IfVersion: client.Version(1), Addressed: new(bool)}); !errors.Is(err, client.ErrConflict) {
		t.Fatalf("stale if_version over the stream: %v", err)
	}
	if _, err := s.Watch(ctx, "no-such-conversation"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("watching an unknown conversation: %v", err)
	}
	err = s.Subscribe(ctx, "no-such-inbox", nil)
	var e *client.Error
	if !errors.As(err, &e) || e.Code != client.CodeNotFound || e.Status != 0 {
		t.Fatalf("subscribing outside the agent's inboxes: %v", err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}

	// After a cut the watch is re-established (a watching event) and a
	// send still gets its ack.
	px.cut()
	ev.next("the watch again", func(e client.Event) bool { return e.Type == client.EventWatching && e.ConversationID == conv })
	item2, err := s.Send(ctx, conv, client.Reply{Body: "after the cut", Kind: client.KindNote})
	if err != nil || item2.Kind != client.KindNote {
		t.Fatalf("send after the reconnect: %+v, %v", item2, err)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Send(ctx, conv, client.Reply{Body: "closed"}); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("send on a closed stream: %v", err)
	}
}

func TestStreamResyncsAfterANodeRestart(t *testing.T) {
	db := pgtest.NewDatabase(t)
	n, stop := startNodeOn(t, db)
	tn := newTenant(t, n.URL())
	ctx := context.Background()
	px := newProxy(t, strings.TrimPrefix(n.URL(), "http://"))
	s, err := newClient(t, px.URL(), tn.agentToken).Connect(ctx, client.StreamOptions{MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ev := watchEvents(t, s)
	first, err := tn.key.PostInbound(ctx, tn.inbox.ID, client.InboundMessage{Contact: client.ContactRef{Phone: "+14155550111"}, Body: "one"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Subscribe(ctx, tn.inbox.ID, &client.ListQuery{Sort: client.SortRecent}); err != nil {
		t.Fatal(err)
	}
	ev.next("the first snapshot", func(e client.Event) bool { return e.Type == client.EventSnapshot })

	// A new node on the same database: the inbox has a new epoch, so the
	// subscription cannot resume and must come back with a snapshot that
	// holds what changed while the client was away.
	stop()
	ev.next("reconnecting", state(client.StateReconnecting))
	n2, _ := startNodeOn(t, db)
	px.retarget(strings.TrimPrefix(n2.URL(), "http://"))
	px.cut()
	second, err := newClient(t, n2.URL(), tn.keyToken).PostInbound(ctx, tn.inbox.ID,
		client.InboundMessage{Contact: client.ContactRef{Phone: "+14155550112"}, Body: "two"})
	if err != nil {
		t.Fatal(err)
	}
	snap := ev.next("a snapshot after the restart", func(e client.Event) bool { return e.Type == client.EventSnapshot })
	ev.next("resynced", state(client.StateResynced))
	ids := map[string]bool{}
	for _, c := range snap.Conversations {
		ids[c.ID] = true
	}
	if !ids[first.ConversationID] {
		t.Fatalf("the snapshot after the restart lacks the first conversation: %+v", snap.Conversations)
	}
	if !ids[second.ConversationID] {
		// Posted after the snapshot was read: it arrives as an update.
		ev.next("the conversation posted during the restart", conversationAt(second.ConversationID, second.Conversation.Version))
	}
}

func TestStreamRefusedCredential(t *testing.T) {
	n := startNode(t)
	_, err := newClient(t, n.URL(), "sbt_not_a_token").Connect(context.Background(), client.StreamOptions{})
	if !errors.Is(err, client.ErrUnauthorized) {
		t.Fatalf("connect with a wrong token: %v, want ErrUnauthorized", err)
	}

	// A token revoked while connected: the server closes the websocket,
	// the reconnect is refused, and the stream ends rather than retrying
	// forever.
	tn := newTenant(t, n.URL())
	s, err := tn.agent.Connect(context.Background(), client.StreamOptions{MinBackoff: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := tn.key.RevokeAgentTokens(context.Background(), tn.agentID); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Done():
	case <-time.After(15 * time.Second):
		t.Fatalf("the stream of a revoked token is still %s", s.State())
	}
	if !errors.Is(s.Err(), client.ErrUnauthorized) || s.State() != client.StateClosed {
		t.Fatalf("ended with %v in state %s, want ErrUnauthorized, closed", s.Err(), s.State())
	}
}
