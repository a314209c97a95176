package webhooks

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
)

// ErrNoSecretKey: the node runs without SWITCHBOARD_SECRET_KEY, so it can
// neither keep a new webhook's secret nor sign with a stored one.
var ErrNoSecretKey = errors.New("webhooks: SWITCHBOARD_SECRET_KEY is not set")

// Sealer encrypts webhook secrets at rest with AES-256-GCM. The secrets
// must be kept readable (they sign every delivery), so hashing them like API
// keys is not an option; a database dump alone does not reveal them.
type Sealer struct {
	aead cipher.AEAD
	// older open what was sealed under earlier keys (the database's own,
	// before SWITCHBOARD_SECRET_KEY was set).
	older []cipher.AEAD
}

// NewSealer takes the key as base64 of 32 random bytes (`openssl rand
// -base64 32`), and optionally earlier keys that Open also tries. An empty
// key gives a nil Sealer, which refuses to work.
func NewSealer(keyB64 string, older ...string) (*Sealer, error) {
	if keyB64 == "" {
		return nil, nil
	}
	aead, err := newAEAD(keyB64)
	if err != nil {
		return nil, err
	}
	s := &Sealer{aead: aead}
	for _, k := range older {
		a, err := newAEAD(k)
		if err != nil {
			return nil, err
		}
		s.older = append(s.older, a)
	}
	return s, nil
}

func newAEAD(keyB64 string) (cipher.AEAD, error) {
	key, err := base64.StdEncoding.DecodeString(keyB64)
	if err != nil || len(key) != 32 {
		return nil, errors.New("webhooks: SWITCHBOARD_SECRET_KEY must be base64 of 32 bytes (openssl rand -base64 32)")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("webhooks: secret key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("webhooks: secret key: %w", err)
	}
	return aead, nil
}

// NewKey returns a fresh key in the form NewSealer takes.
func NewKey() string {
	var k [32]byte
	_, _ = rand.Read(k[:])
	return base64.StdEncoding.EncodeToString(k[:])
}

// Seal encrypts plain; the webhook id is bound as associated data, so a
// sealed secret copied onto another webhook's row does not open.
func (s *Sealer) Seal(webhookID, plain string) ([]byte, error) {
	if s == nil {
		return nil, ErrNoSecretKey
	}
	nonce := make([]byte, s.aead.NonceSize())
	_, _ = rand.Read(nonce)
	return s.aead.Seal(nonce, nonce, []byte(plain), []byte(webhookID)), nil
}

// Open decrypts what Seal returned.
func (s *Sealer) Open(webhookID string, sealed []byte) (string, error) {
	if s == nil {
		return "", ErrNoSecretKey
	}
	n := s.aead.NonceSize()
	if len(sealed) < n {
		return "", errors.New("webhooks: sealed secret is truncated")
	}
	plain, err := s.aead.Open(nil, sealed[:n], sealed[n:], []byte(webhookID))
	for _, a := range s.older {
		if err == nil {
			break
		}
		plain, err = a.Open(nil, sealed[:n], sealed[n:], []byte(webhookID))
	}
	if err != nil {
		return "", fmt.Errorf("webhooks: open secret of %s (wrong SWITCHBOARD_SECRET_KEY?): %w", webhookID, err)
	}
	return string(plain), nil
}
