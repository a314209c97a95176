package webhooks

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Errors of the endpoint API.
var (
	ErrNotFound = errors.New("webhooks: not found")
	// ErrDelivered: a retry of a delivery that succeeded.
	ErrDelivered = errors.New("webhooks: delivery already succeeded")
)

// Webhook is an endpoint as the API shows it (never with its secret).
type Webhook struct {
	ID          string    `json:"id"`
	URL         string    `json:"url"`
	Events      []string  `json:"events"`
	Description string    `json:"description"`
	CreatedAt   time.Time `json:"created_at"`
}

// Delivery is one event's delivery to one webhook, as the API lists it.
type Delivery struct {
	EventID        string     `json:"event_id"`
	Type           string     `json:"type"`
	ConversationID string     `json:"conversation_id"`
	Version        int64      `json:"version"`
	Status         string     `json:"status"`
	Attempts       int        `json:"attempts"`
	LastError      string     `json:"last_error"`
	NextAttemptAt  *time.Time `json:"next_attempt_at"`
	createdAt      time.Time  // the listing's order key, for its cursor
}

// Endpoints manages webhook endpoints and their deliveries in PostgreSQL.
type Endpoints struct {
	pool   *pgxpool.Pool
	sealer *Sealer
	// The deliverer's retry schedule, by which the deliveries list tells
	// the retries an open circuit holds back.
	retryMin, retryMax time.Duration
}

// NewEndpoints returns the endpoint store; sealer may be nil (then Create
// answers ErrNoSecretKey). cfg is the deliverer's (its retry schedule).
func NewEndpoints(pool *pgxpool.Pool, sealer *Sealer, cfg Config) *Endpoints {
	cfg = cfg.withDefaults()
	return &Endpoints{pool: pool, sealer: sealer, retryMin: cfg.RetryMin, retryMax: cfg.RetryMax}
}

func newID(prefix string) string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s%x", prefix, b[:])
}

// Create stores a webhook (url and events already validated) and returns it
// with its secret, which is shown this once.
func (e *Endpoints) Create(ctx context.Context, accountID, url string, events []string, description string) (Webhook, string, error) {
	id := newID("wh_")
	secret := NewSecret()
	sealed, err := e.sealer.Seal(id, secret)
	if err != nil {
		return Webhook{}, "", err
	}
	w := Webhook{ID: id, URL: url, Events: events, Description: description}
	err = e.pool.QueryRow(ctx, `INSERT INTO webhooks (id, account_id, url, events, description, secret_sealed)
VALUES ($1, $2, $3, $4, $5, $6) RETURNING created_at`, id, accountID, url, events, description, sealed).Scan(&w.CreatedAt)
	if err != nil {
		return Webhook{}, "", fmt.Errorf("webhooks: create: %w", err)
	}
	return w, secret, nil
}

// List returns an account's webhooks, oldest first.
func (e *Endpoints) List(ctx context.Context, accountID string) ([]Webhook, error) {
	rows, err := e.pool.Query(ctx, `SELECT id, url, events, description, created_at FROM webhooks
WHERE account_id = $1 ORDER BY created_at, id`, accountID)
	if err != nil {
		return nil, fmt.Errorf("webhooks: list: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Webhook, error) {
		var w Webhook
		err := r.Scan(&w.ID, &w.URL, &w.Events, &w.Description, &w.CreatedAt)
		return w, err
	})
	if err != nil {
		return nil, fmt.Errorf("webhooks: list: %w", err)
	}
	return out, nil
}

// Delete removes a webhook. The deliverer reads the row right before
// every attempt, so once this returned no attempt starts but one whose
// read came just before it (a gap of milliseconds between an attempt's
// read and its send).
//
// Its deliveries are left to the deliverer's retention, which purges them
// in batches (retention.go): deleting them here took as long as a receiver
// had been down (1 M rows 1.4 s, and a day's backlog tens of millions),
// holding their row locks against the recording of outcomes. No read that
// attempts or lists deliveries sees them meanwhile: each joins the
// webhooks table.
func (e *Endpoints) Delete(ctx context.Context, accountID, id string) error {
	tag, err := e.pool.Exec(ctx, `WITH gone AS (DELETE FROM webhooks WHERE id = $1 AND account_id = $2 RETURNING id)
INSERT INTO webhooks_deleted (id) SELECT id FROM gone`, id, accountID)
	if err != nil {
		return fmt.Errorf("webhooks: delete %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// DeliveryPage is one page of a webhook's deliveries.
type DeliveryPage struct {
	Deliveries []Delivery
	// NextCursor continues the listing after this page; "" at its end.
	NextCursor string
}

// ErrBadCursor: a deliveries cursor this package did not make.
var ErrBadCursor = errors.New("webhooks: not a deliveries cursor")

// Deliveries lists a webhook's pending or failed deliveries ("" for both),
// oldest first, at most limit, after cursor ("" from the start). A
// delivery retried through the API counts as queued anew, so it moves to
// the end of the listing.
func (e *Endpoints) Deliveries(ctx context.Context, accountID, id, status string, limit int, cursor string) (DeliveryPage, error) {
	after, err := decodeDeliveryCursor(cursor)
	if err != nil {
		return DeliveryPage{}, err
	}
	var exists bool
	if err := e.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM webhooks WHERE id = $1 AND account_id = $2)`, id, accountID).Scan(&exists); err != nil {
		return DeliveryPage{}, fmt.Errorf("webhooks: deliveries of %s: %w", id, err)
	}
	if !exists {
		return DeliveryPage{}, ErrNotFound
	}
	statuses := []string{"pending", "failed"}
	if status != "" {
		statuses = []string{status}
	}
	// A retry past the first waits for an open circuit until it cools
	// down, or until it is overdue, whichever comes first (held, in
	// attempts.go). One row more than the page tells whether another
	// follows.
	rows, err := e.pool.Query(ctx, `SELECT d.event_id, d.type, d.conversation_id, d.version, d.status, d.attempts, d.last_error,
	CASE WHEN d.status = 'pending' AND d.attempts >= 2 AND w.circuit_open_until > d.next_attempt_at
		THEN least(w.circuit_open_until, `+unheldAtSQL("$4", "$5")+`) ELSE d.next_attempt_at END,
	d.created_at
FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
WHERE d.webhook_id = $1 AND d.status = ANY($2)
	AND ($6::timestamptz IS NULL OR (d.created_at, d.conversation_id, d.version) > ($6, $7, $8))
ORDER BY d.created_at, d.conversation_id, d.version LIMIT $3`,
		id, statuses, limit+1, e.retryMax.Seconds(), e.retryMin.Seconds(), after.createdAt, after.conversationID, after.version)
	if err != nil {
		return DeliveryPage{}, fmt.Errorf("webhooks: deliveries of %s: %w", id, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Delivery, error) {
		var d Delivery
		err := r.Scan(&d.EventID, &d.Type, &d.ConversationID, &d.Version, &d.Status, &d.Attempts, &d.LastError, &d.NextAttemptAt, &d.createdAt)
		return d, err
	})
	if err != nil {
		return DeliveryPage{}, fmt.Errorf("webhooks: deliveries of %s: %w", id, err)
	}
	page := DeliveryPage{Deliveries: out}
	if len(out) > limit {
		last := out[limit-1]
		page.Deliveries = out[:limit]
		page.NextCursor = deliveryCursor{createdAt: &last.createdAt, conversationID: last.ConversationID, version: last.Version}.encode()
	}
	return page, nil
}

// deliveryCursor is the listing's order key of the last delivery of a
// page: (created_at, conversation_id, version), unique within a webhook.
type deliveryCursor struct {
	createdAt      *time.Time // nil: from the start
	conversationID string
	version        int64
}

// encode is the cursor as the API carries it: unpadded base64url of
// "<created_at in Unix µs>.<version>.<conversation id>".
func (c deliveryCursor) encode() string {
	raw := strconv.FormatInt(c.createdAt.UnixMicro(), 10) + "." + strconv.FormatInt(c.version, 10) + "." + c.conversationID
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

func decodeDeliveryCursor(s string) (deliveryCursor, error) {
	if s == "" {
		return deliveryCursor{}, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return deliveryCursor{}, ErrBadCursor
	}
	micros, rest, ok1 := strings.Cut(string(raw), ".")
	version, conv, ok2 := strings.Cut(rest, ".")
	us, err1 := strconv.ParseInt(micros, 10, 64)
	v, err2 := strconv.ParseInt(version, 10, 64)
	if !ok1 || !ok2 || err1 != nil || err2 != nil || conv == "" || !utf8.ValidString(conv) {
		return deliveryCursor{}, ErrBadCursor
	}
	at := time.UnixMicro(us)
	return deliveryCursor{createdAt: &at, conversationID: conv, version: v}, nil
}

// Retry sends a failed delivery again, from the start: a fresh retry
// horizon and attempt count, so its first attempt and first retry go even
// through an open circuit. A pending one is left as it is (it is being
// retried already). The retried delivery is detached from its queue: the
// events after it went out once it failed for good, and none waits for it
// now.
func (e *Endpoints) Retry(ctx context.Context, accountID, id, eventID string) error {
	var status string
	err := e.pool.QueryRow(ctx, `
WITH d AS (
	SELECT d.webhook_id, d.event_id, d.status FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
	WHERE d.webhook_id = $1 AND d.event_id = $2 AND w.account_id = $3 FOR UPDATE OF d
), u AS (
	UPDATE webhook_deliveries x SET status = 'pending', next_attempt_at = now(), created_at = now(), first_attempt_at = NULL, last_error = '',
		attempts = 0, detached = true
	FROM d WHERE x.webhook_id = d.webhook_id AND x.event_id = d.event_id AND d.status = 'failed'
)
SELECT status FROM d`, id, eventID, accountID).Scan(&status)
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("webhooks: retry %s/%s: %w", id, eventID, err)
	}
	if status == "delivered" {
		return ErrDelivered
	}
	return nil
}
