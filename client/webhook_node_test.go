package client_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/client"
	"github.com/switchboard-dev/switchboard/consumers/webhooks"
	"github.com/switchboard-dev/switchboard/server"
)

type delivery struct {
	header http.Header
	body   []byte
}

func TestWebhookFromTheNodeVerifies(t *testing.T) {
	n := startNode(t, func(c *server.Config) {
		c.WebhookAllowPrivate = true
		c.Webhooks = webhooks.Config{DispatchInterval: 50 * time.Millisecond, LockRetry: 100 * time.Millisecond}
	})
	tn := newTenant(t, n.URL())
	ctx := context.Background()
	got := make(chan delivery, 16)
	var secret atomic.Value // set before any event exists
	secret.Store("")
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if _, _, err := client.ParseWebhook(secret.Load().(string), r.Header, body, 5*time.Minute); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		got <- delivery{r.Header.Clone(), body}
	}))
	defer recv.Close()
	wh, err := tn.key.CreateWebhook(ctx, client.CreateWebhookRequest{URL: recv.URL + "/hook", Events: []client.WebhookEventType{client.WebhookMessageCreated}})
	if err != nil {
		t.Fatal(err)
	}
	secret.Store(wh.Secret)
	in, err := tn.key.PostInbound(ctx, tn.inbox.ID, client.InboundMessage{Contact: client.ContactRef{Phone: "+14155550131"}, Body: "signed, sealed"})
	if err != nil {
		t.Fatal(err)
	}
	var d delivery
	select {
	case d = <-got:
	case <-time.After(15 * time.Second):
		t.Fatal("no verified delivery")
	}
	ev, data, err := client.ParseWebhook(wh.Secret, d.header, d.body, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Type != client.WebhookMessageCreated || ev.ConversationID != in.ConversationID || ev.Version != 1 ||
		data.Message == nil || data.Message.Body != "signed, sealed" || data.Conversation == nil || data.Conversation.ID != in.ConversationID {
		t.Fatalf("delivery: %+v %+v", ev, data)
	}
	// The same real delivery, tampered with or checked with another secret,
	// fails.
	tampered := append([]byte{}, d.body...)
	tampered[len(tampered)-2] ^= 1
	if err := client.VerifyWebhook(wh.Secret, d.header, tampered, 5*time.Minute); !errors.Is(err, client.ErrWebhookSignature) {
		t.Fatalf("a tampered body: %v", err)
	}
	if err := client.VerifyWebhook(webhooks.NewSecret(), d.header, d.body, 5*time.Minute); !errors.Is(err, client.ErrWebhookSignature) {
		t.Fatalf("another secret: %v", err)
	}
}
