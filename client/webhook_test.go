package client

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// sign is the Standard Webhooks signature, written out independently of
// VerifyWebhook.
func sign(key []byte, id string, ts int64, body string) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + strconv.FormatInt(ts, 10) + "." + body))
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

func TestVerifyWebhook(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	secret := "whsec_" + base64.StdEncoding.EncodeToString(key)
	other := []byte("another key, for rotation, 32 b!")
	now := time.Unix(1_800_000_000, 0)
	body := `{"id":"evt_1","type":"message.created"}`
	header := func(ts int64, sigs string) http.Header {
		h := http.Header{}
		h.Set("webhook-id", "evt_1")
		h.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
		h.Set("webhook-signature", sigs)
		return h
	}
	ts := now.Unix()
	good := sign(key, "evt_1", ts, body)
	cases := []struct {
		name   string
		secret string
		h      http.Header
		body   string
		ok     bool
	}{
		{"valid", secret, header(ts, good), body, true},
		{"one of several signatures", secret, header(ts, sign(other, "evt_1", ts, body)+" "+good), body, true},
		{"an unknown scheme beside a valid one", secret, header(ts, "v1a,AAAA "+good), body, true},
		{"within tolerance, late", secret, header(ts-299, sign(key, "evt_1", ts-299, body)), body, true},
		{"within tolerance, early", secret, header(ts+299, sign(key, "evt_1", ts+299, body)), body, true},
		{"too old", secret, header(ts-301, sign(key, "evt_1", ts-301, body)), body, false},
		{"from the future", secret, header(ts+301, sign(key, "evt_1", ts+301, body)), body, false},
		{"body changed", secret, header(ts, good), body + " ", false},
		{"id changed", secret, func() http.Header { h := header(ts, good); h.Set("webhook-id", "evt_2"); return h }(), body, false},
		{"other key", "whsec_" + base64.StdEncoding.EncodeToString(other), header(ts, good), body, false},
		{"only other schemes", secret, header(ts, "v2,"+good[3:]), body, false},
		{"not base64", secret, header(ts, "v1,***"), body, false},
		{"no signature", secret, header(ts, ""), body, false},
		{"bad timestamp", secret, func() http.Header { h := header(ts, good); h.Set("webhook-timestamp", "soon"); return h }(), body, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := verifyWebhookAt(tc.secret, tc.h, []byte(tc.body), 5*time.Minute, now)
			if tc.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tc.ok && !errors.Is(err, ErrWebhookSignature) {
				t.Fatalf("got %v, want ErrWebhookSignature", err)
			}
		})
	}
	for _, bad := range []string{"", "0123", "whsec_***", "whsec_"} {
		if err := verifyWebhookAt(bad, header(ts, good), []byte(body), time.Minute, now); err == nil || errors.Is(err, ErrWebhookSignature) {
			t.Errorf("secret %q: %v, want a secret error", bad, err)
		}
	}
}
