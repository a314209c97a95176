package client

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ErrWebhookSignature is the error of every failed VerifyWebhook check.
var ErrWebhookSignature = errors.New("switchboard: webhook signature invalid")

// VerifyWebhook checks a webhook delivery the way the Standard Webhooks
// specification asks a receiver to: the secret is "whsec_" and the base64
// of the key; webhook-signature holds one or more space-separated
// "v1,<base64 HMAC-SHA256 of id.timestamp.body>" (several while a secret is
// rotated; one matching is enough); webhook-timestamp (Unix seconds) must be
// within tolerance of now, so a captured delivery cannot be replayed later.
// body must be the raw request body, before any JSON decoding.
func VerifyWebhook(secret string, header http.Header, body []byte, tolerance time.Duration) error {
	return verifyWebhookAt(secret, header, body, tolerance, time.Now())
}

func verifyWebhookAt(secret string, header http.Header, body []byte, tolerance time.Duration, now time.Time) error {
	key, err := webhookKey(secret)
	if err != nil {
		return err
	}
	id, tsRaw, sigs := header.Get("webhook-id"), header.Get("webhook-timestamp"), header.Get("webhook-signature")
	if id == "" || tsRaw == "" || sigs == "" {
		return fmt.Errorf("%w: missing webhook-id, webhook-timestamp or webhook-signature", ErrWebhookSignature)
	}
	ts, err := strconv.ParseInt(tsRaw, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: webhook-timestamp %q is not Unix seconds", ErrWebhookSignature, tsRaw)
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: webhook-timestamp is %s away from now, beyond %s", ErrWebhookSignature, d.Round(time.Second), tolerance)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + tsRaw + "."))
	mac.Write(body)
	want := mac.Sum(nil)
	for _, s := range strings.Fields(sigs) {
		version, sig, ok := strings.Cut(s, ",")
		if !ok || version != "v1" {
			continue // other schemes (v1a: asymmetric) are not ours to check
		}
		got, err := base64.StdEncoding.DecodeString(sig)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return fmt.Errorf("%w: no v1 signature matches", ErrWebhookSignature)
}

func webhookKey(secret string) ([]byte, error) {
	raw, ok := strings.CutPrefix(secret, "whsec_")
	if !ok {
		return nil, errors.New("switchboard: webhook secret must start with whsec_")
	}
	key, err := base64.StdEncoding.DecodeString(raw)
	if err != nil || len(key) == 0 {
		return nil, fmt.Errorf("switchboard: webhook secret is not whsec_ and base64: %v", err)
	}
	return key, nil
}

// WebhookEvent is the body of a webhook delivery. Data is decoded by type:
// message.created and message.updated carry Message and Conversation,
// call.updated Call and Conversation, conversation.updated Conversation.
type WebhookEvent struct {
	ID             string           `json:"id"`
	Type           WebhookEventType `json:"type"`
	CreatedAt      time.Time        `json:"created_at"`
	AccountID      string           `json:"account_id"`
	InboxID        string           `json:"inbox_id"`
	ConversationID string           `json:"conversation_id"`
	Version        int64            `json:"version"`
	Data           json.RawMessage  `json:"data"`
}

// WebhookData is the data of any event type; what a type does not carry is nil.
type WebhookData struct {
	Message      *Item         `json:"message"`
	Call         *Item         `json:"call"`
	Conversation *Conversation `json:"conversation"`
}

// ParseWebhook verifies a delivery (VerifyWebhook) and decodes it. A
// receiver de-duplicates on the event's ID: a delivery may come more than
// once.
func ParseWebhook(secret string, header http.Header, body []byte, tolerance time.Duration) (*WebhookEvent, *WebhookData, error) {
	if err := VerifyWebhook(secret, header, body, tolerance); err != nil {
		return nil, nil, err
	}
	var ev WebhookEvent
	if err := json.Unmarshal(body, &ev); err != nil {
		return nil, nil, fmt.Errorf("switchboard: decode webhook: %w", err)
	}
	if ev.ID != header.Get("webhook-id") {
		// Receivers de-duplicate on either; a delivery where they differ
		// cannot be de-duplicated safely.
		return nil, nil, fmt.Errorf("%w: body id %q is not webhook-id %q", ErrWebhookSignature, ev.ID, header.Get("webhook-id"))
	}
	var data WebhookData
	if len(ev.Data) > 0 {
		if err := json.Unmarshal(ev.Data, &data); err != nil {
			return nil, nil, fmt.Errorf("switchboard: decode webhook %s data: %w", ev.Type, err)
		}
	}
	return &ev, &data, nil
}
