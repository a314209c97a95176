package webhooks

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Signatures per the Standard Webhooks specification: the secret is
// "whsec_" + base64 of the key; a delivery carries webhook-id,
// webhook-timestamp (Unix seconds) and webhook-signature "v1,<base64
// HMAC-SHA256 of id.timestamp.body>".

const secretPrefix = "whsec_"

// NewSecret returns a fresh signing secret.
func NewSecret() string {
	var k [24]byte
	_, _ = rand.Read(k[:])
	return secretPrefix + base64.StdEncoding.EncodeToString(k[:])
}

func secretKey(secret string) ([]byte, error) {
	raw, ok := strings.CutPrefix(secret, secretPrefix)
	if !ok {
		return nil, errors.New("webhooks: secret must start with whsec_")
	}
	key, err := base64.StdEncoding.DecodeString(raw)
	if err != nil {
		return nil, fmt.Errorf("webhooks: secret is not base64: %w", err)
	}
	return key, nil
}

// Sign returns the webhook-signature header value for a delivery.
func Sign(secret, id string, ts int64, body []byte) (string, error) {
	key, err := secretKey(secret)
	if err != nil {
		return "", err
	}
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%d.", id, ts)
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)), nil
}

// Verify checks a delivery's headers against secret, as a receiver must:
// any of the space-separated v1 signatures matching is enough, and the
// timestamp must be within tolerance of now (replay protection).
func Verify(secret string, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	id, tsRaw, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || tsRaw == "" || sigs == "" {
		return errors.New("webhooks: missing webhook-id, webhook-timestamp or webhook-signature")
	}
	ts, err := strconv.ParseInt(tsRaw, 10, 64)
	if err != nil {
		return fmt.Errorf("webhooks: bad webhook-timestamp %q", tsRaw)
	}
	if math.Abs(now.Sub(time.Unix(ts, 0)).Seconds()) > tolerance.Seconds() {
		return fmt.Errorf("webhooks: webhook-timestamp %d is outside the tolerance", ts)
	}
	want, err := Sign(secret, id, ts, body)
	if err != nil {
		return err
	}
	for _, s := range strings.Fields(sigs) {
		if hmac.Equal([]byte(s), []byte(want)) {
			return nil
		}
	}
	return errors.New("webhooks: no signature matches")
}
