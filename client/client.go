// Package client is the Go client of the Switchboard API: typed REST calls
// with typed errors and retries (client.go, rest.go), the live websocket
// with reconnect and resume (stream.go), and webhook signature
// verification (webhook.go).
//
//	c, err := client.New("https://switchboard.example.com", apiKey)
//	res, err := c.PostInbound(ctx, inboxID, client.InboundMessage{
//		Contact: client.ContactRef{Phone: "+14155550123"}, Body: "Hi", ExternalID: smsID})
//	if errors.Is(err, client.ErrNotFound) { ... }
package client

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Client calls the REST API with one credential: the admin token, an
// account API key or an agent token. It is safe for concurrent use.
type Client struct {
	base       *url.URL
	token      string
	http       *http.Client
	maxRetries int
	maxWait    time.Duration
	userAgent  string
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sets the *http.Client requests go through (transport,
// timeouts, proxies). The default is http.DefaultClient; bound each call with
// its context.
func WithHTTPClient(h *http.Client) Option { return func(c *Client) { c.http = h } }

// WithRetries sets how often a request refused with 429 or 503 (or that got
// no answer at all) is sent again, and the longest wait before one retry: a
// Retry-After beyond maxWait returns the error at once instead of sleeping,
// and so does one that would end past the context's deadline. Defaults: 3
// retries, 30 s; WithRetries(0, 0) turns retries off. Only requests that
// cannot be applied twice are retried: reads, deletes, absolute settings
// (an inbox's, an agent's status), and writes carrying an idempotency key
// (an inbound message's external_id, a reply's client_id, a delivery
// report, which only moves a status forward).
func WithRetries(max int, maxWait time.Duration) Option {
	return func(c *Client) { c.maxRetries, c.maxWait = max, maxWait }
}

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// New returns a client of the server at baseURL (like
// "https://switchboard.example.com") using token as its credential.
func New(baseURL, token string, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil {
		return nil, fmt.Errorf("switchboard: base URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("switchboard: base URL %q: want http(s)://host", baseURL)
	}
	c := &Client{base: u, token: token, http: http.DefaultClient, maxRetries: 3, maxWait: 30 * time.Second,
		userAgent: "switchboard-go"}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// WithToken returns a client like c that uses another credential: the admin
// creates an account, then acts with its key.
func (c *Client) WithToken(token string) *Client {
	cp := *c
	cp.token = token
	return &cp
}

// errTransport marks a request that got no answer.
var errTransport = errors.New("no answer")

// maxBody bounds what is read of a response: a page of 200 summaries is
// far below it.
const maxBody = 32 << 20

// request is one API call.
type request struct {
	method, path string
	query        url.Values
	body         any
	// retry: the request may be sent again without being applied twice.
	retry bool
	// out receives a success answer (nil: ignored).
	out any
}

// do sends r, retrying as the Client allows, and decodes a success into
// r.out. It returns the success status.
func (c *Client) do(ctx context.Context, r request) (int, error) {
	var body []byte
	if r.body != nil {
		b, err := json.Marshal(r.body)
		if err != nil {
			return 0, fmt.Errorf("switchboard: %s %s: encode body: %w", r.method, r.path, err)
		}
		body = b
	}
	for attempt := 0; ; attempt++ {
		status, err := c.once(ctx, r, body)
		if err == nil || !r.retry || attempt >= c.maxRetries || ctx.Err() != nil {
			return status, err
		}
		wait, ok := retryWait(err, status, attempt)
		if !ok || wait > c.maxWait {
			return status, err
		}
		if dl, has := ctx.Deadline(); has && time.Until(dl) < wait {
			// Waiting would only end in the context's error; the server's
			// answer says more.
			return status, err
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return status, err
		}
	}
}

// retryWait says whether a failed attempt is worth another and after how
// long: Retry-After when the server named it, else exponential backoff with
// jitter. Worth it: a 429 or 503, or no answer at all (status 0: the
// connection was refused or broke, as while a node restarts). Not: any
// other error status, or an answer that could not be read or decoded.
func retryWait(err error, status, attempt int) (time.Duration, bool) {
	var e *Error
	switch {
	case errors.As(err, &e):
		if e.Status != http.StatusTooManyRequests && e.Status != http.StatusServiceUnavailable {
			return 0, false
		}
		if e.RetryAfter > 0 {
			return e.RetryAfter, true
		}
	case status != 0 || !errors.Is(err, errTransport):
		return 0, false
	}
	// No Retry-After, or the request never got an answer (connection
	// refused during a node's restart): back off, with jitter so that many
	// clients do not come back in the same instant.
	base := min(100*time.Millisecond<<attempt, 5*time.Second)
	return base/2 + rand.N(base/2+1), true
}

// once sends one attempt.
func (c *Client) once(ctx context.Context, r request, body []byte) (int, error) {
	u := *c.base
	u.Path += r.path
	if len(r.query) > 0 {
		u.RawQuery = r.query.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u.String(), rd)
	if err != nil {
		return 0, fmt.Errorf("switchboard: %s %s: %w", r.method, r.path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.userAgent != "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("switchboard: %s %s: %w: %w", r.method, r.path, errTransport, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, maxBody))
	if err != nil {
		return res.StatusCode, fmt.Errorf("switchboard: %s %s: read answer: %w", r.method, r.path, err)
	}
	if res.StatusCode >= 300 {
		return res.StatusCode, apiError(r.method, r.path, res, data)
	}
	if r.out != nil && res.StatusCode != http.StatusNoContent {
		if err := json.Unmarshal(data, r.out); err != nil {
			return res.StatusCode, fmt.Errorf("switchboard: %s %s: decode %d answer: %w", r.method, r.path, res.StatusCode, err)
		}
	}
	return res.StatusCode, nil
}

func apiError(method, path string, res *http.Response, data []byte) *Error {
	e := &Error{Status: res.StatusCode, Method: method, Path: path, RetryAfter: retryAfter(res.Header.Get("Retry-After"))}
	var env struct {
		Error struct {
			Code    Code   `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(data, &env) == nil && env.Error.Code != "" {
		e.Code, e.Message = env.Error.Code, env.Error.Message
	} else {
		e.Code, e.Message = codeForStatus(res.StatusCode), http.StatusText(res.StatusCode)
	}
	return e
}

// retryAfter reads a Retry-After header: seconds, or an HTTP date.
func retryAfter(h string) time.Duration {
	if h == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(h)); err == nil {
		return time.Duration(max(s, 0)) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

// newClientID is a random idempotency key.
func newClientID() string {
	var b [16]byte
	_, _ = crand.Read(b[:])
	return hex.EncodeToString(b[:])
}
