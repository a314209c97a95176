package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/switchboard-dev/switchboard/client"
)

// apiClient speaks the REST half of the public API. Every request carries its own
// deadline (no http.Client timeout) so one client serves both REST calls
// and the long-lived websocket handshakes.
//
// Set-up, search samples and the indexer pause go through the Go client
// (sdk). The measured writes (do, via runner.send) do not: the tool counts
// every attempt and its status itself, and retries on any 5xx, where the
// Go client would hide both.
type apiClient struct {
	base    string
	http    *http.Client
	timeout time.Duration
	sdk     *client.Client // no credential, no retries: as() adds the credential
}

func newAPIClient(base string, timeout time.Duration, conns int) (*apiClient, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// Without enough idle connections every burst opens fresh sockets and
	// the ack latency measures TCP handshakes and TIME_WAIT exhaustion.
	tr.MaxIdleConns = conns
	tr.MaxIdleConnsPerHost = conns
	hc := &http.Client{Transport: tr}
	sdk, err := client.New(base, "", client.WithHTTPClient(hc), client.WithRetries(0, 0), client.WithUserAgent("switchboard-loadtest"))
	if err != nil {
		return nil, fmt.Errorf("--url: %w", err)
	}
	return &apiClient{base: base, http: hc, timeout: timeout, sdk: sdk}, nil
}

// as is the Go client with credential cred, and ctx bounded by the request
// timeout.
func (c *apiClient) as(ctx context.Context, cred string) (*client.Client, context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	return c.sdk.WithToken(cred), ctx, cancel
}

func (c *apiClient) close() { c.http.CloseIdleConnections() }

// apiError is a response with an error status, in the API's error shape.
type apiError struct {
	Method, Path string
	Status       int
	Code         string
	Message      string
}

func (e *apiError) Error() string {
	if e.Code != "" {
		return fmt.Sprintf("%s %s: %d %s: %s", e.Method, e.Path, e.Status, e.Code, e.Message)
	}
	return fmt.Sprintf("%s %s: %d", e.Method, e.Path, e.Status)
}

// maxBody bounds what is read of any response: a first page of 200
// summaries is far below it.
const maxBody = 32 << 20

// do sends one request with credential cred and decodes a successful JSON
// answer into out (when not nil). It returns the HTTP status.
func (c *apiClient) do(ctx context.Context, method, path, cred string, body, out any) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, fmt.Errorf("%s %s: encode body: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if cred != "" {
		req.Header.Set("Authorization", "Bearer "+cred)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("%s %s: read body: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		e := &apiError{Method: method, Path: path, Status: resp.StatusCode}
		var env struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if json.Unmarshal(data, &env) == nil {
			e.Code, e.Message = env.Error.Code, env.Error.Message
		}
		return resp.StatusCode, e
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: decode %d answer: %w", method, path, resp.StatusCode, err)
		}
	}
	return resp.StatusCode, nil
}

// retryable says whether another attempt with the same idempotency key
// may succeed: transport failures, timeouts and overload, not refusals.
func retryable(err error) bool {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.Status == http.StatusTooManyRequests || ae.Status >= 500
	}
	return err != nil
}

// errorKind buckets a failure for the report.
func errorKind(err error) string {
	var ae *apiError
	var ce *client.Error
	var ne net.Error
	switch {
	case errors.As(err, &ae):
		return fmt.Sprintf("http_%d", ae.Status)
	case errors.As(err, &ce) && ce.Status != 0:
		return fmt.Sprintf("http_%d", ce.Status)
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case strings.Contains(err.Error(), "decode"):
		return "bad_response"
	default:
		return "transport"
	}
}

// Wire types: only the fields the tool uses.

type summaryRef struct {
	ID      string `json:"id"`
	InboxID string `json:"inbox_id"`
	Version int64  `json:"version"`
}

type messageRef struct {
	ID             string `json:"id"`
	Seq            int64  `json:"seq"`
	ConversationID string `json:"conversation_id"`
}

type inboundResp struct {
	ConversationID string     `json:"conversation_id"`
	Message        messageRef `json:"message"`
	Conversation   summaryRef `json:"conversation"`
}

type callResp struct {
	ConversationID string `json:"conversation_id"`
	Call           struct {
		CallID string `json:"call_id"`
		Seq    int64  `json:"seq"`
	} `json:"call"`
	Conversation summaryRef `json:"conversation"`
}

// replyResp accepts both readings of the API's "→ 201 message": the bare
// message, or the message wrapped like the inbound answer.
type replyResp struct {
	messageRef
	Message      *messageRef `json:"message"`
	Conversation *summaryRef `json:"conversation"`
}

func (r replyResp) msg() messageRef {
	if r.Message != nil {
		return *r.Message
	}
	return r.messageRef
}
