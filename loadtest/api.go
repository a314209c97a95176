package loadtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tidwall/gjson"
	"github.com/valyala/fasthttp"

	"github.com/switchboard-dev/switchboard/client"
)

// apiClient speaks the REST half of the public API. Every request carries its own
// deadline (no http.Client timeout) so one client serves both REST calls
// and the long-lived websocket handshakes.
//
// Set-up, search samples and the indexer pause go through the Go client
// (sdk). The measured writes (do, via runner.send) do not: the tool counts
// every attempt and its status itself, and retries on any 5xx, where the
// Go client would hide both. They go through fasthttp's client, which
// writes and reads each connection in the caller's goroutine: net/http's
// client hands every request to two goroutines of its connection and back,
// and with those wake-ups the tool spent about as much CPU per write as
// PostgreSQL, on the cores it shares with it and the node (docs/BENCHMARKS.md).
type apiClient struct {
	base    string
	writes  *fasthttp.HostClient // the measured writes (do)
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
	sdk, err := client.New(base, "", client.WithHTTPClient(hc), client.WithRetries(0, 0), client.WithUserAgent(userAgent))
	if err != nil {
		return nil, fmt.Errorf("--url: %w", err)
	}
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("--url: %w", err)
	}
	tls, addr := u.Scheme == "https", u.Host
	if u.Port() == "" {
		port := "80"
		if tls {
			port = "443"
		}
		addr = net.JoinHostPort(u.Hostname(), port)
	}
	writes := &fasthttp.HostClient{
		Addr: addr, IsTLS: tls, Name: userAgent,
		MaxConns: conns, MaxConnWaitTimeout: timeout, MaxResponseBodySize: maxBody,
	}
	return &apiClient{base: base, writes: writes, http: hc, timeout: timeout, sdk: sdk}, nil
}

// as is the Go client with credential cred, and ctx bounded by the request
// timeout.
func (c *apiClient) as(ctx context.Context, cred string) (*client.Client, context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	return c.sdk.WithToken(cred), ctx, cancel
}

const userAgent = "switchboard-loadtest"

func (c *apiClient) close() {
	c.http.CloseIdleConnections()
	c.writes.CloseIdleConnections()
}

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
// answer into out (when not nil). It returns the HTTP status. The attempt
// ends at its timeout or ctx's deadline, whichever is first; a canceled
// ctx without a deadline does not cut it short (fasthttp takes deadlines,
// not contexts), so the run's end waits for the attempts in flight.
func (c *apiClient) do(ctx context.Context, method, path, cred string, body, out any) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("%s %s: %w", method, path, err)
	}
	deadline := time.Now().Add(c.timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(c.base + path)
	req.Header.SetMethod(method)
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, fmt.Errorf("%s %s: encode body: %w", method, path, err)
		}
		req.SetBodyRaw(b)
		req.Header.SetContentType("application/json")
	}
	req.Header.Set("Accept", "application/json")
	if cred != "" {
		req.Header.Set("Authorization", "Bearer "+cred)
	}
	if err := c.writes.DoDeadline(req, resp, deadline); err != nil {
		return 0, fmt.Errorf("%s %s: %w", method, path, err)
	}
	data := resp.Body()
	status := resp.StatusCode()
	if status >= 300 {
		e := &apiError{Method: method, Path: path, Status: status}
		var env struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if json.Unmarshal(data, &env) == nil {
			e.Code, e.Message = env.Error.Code, env.Error.Message
		}
		return status, e
	}
	if out != nil {
		var err error
		if d, ok := out.(answerDecoder); ok {
			err = d.decodeAnswer(data)
		} else {
			err = json.Unmarshal(data, out)
		}
		if err != nil {
			return status, fmt.Errorf("%s %s: decode %d answer: %w", method, path, status, err)
		}
	}
	return status, nil
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

// numberOrAbsent: what encoding/json would decode into an int64 field
// without an error (a missing field or null leave it 0).
func numberOrAbsent(v gjson.Result) bool {
	return v.Type == gjson.Number || v.Type == gjson.Null
}

// answerDecoder is an answer that reads its own fields: do calls it instead
// of json.Unmarshal.
type answerDecoder interface {
	decodeAnswer(data []byte) error
}

// decodeAnswer picks the seven fields out of an inbound answer without
// decoding the rest: one answer per measured write, and encoding/json spent
// a quarter of the tool's CPU on them, mostly on the summary it skips.
func (r *inboundResp) decodeAnswer(data []byte) error {
	if !gjson.ValidBytes(data) {
		return errors.New("invalid JSON")
	}
	f := gjson.GetManyBytes(data, "conversation_id", "message.id", "message.seq", "message.conversation_id",
		"conversation.id", "conversation.inbox_id", "conversation.version")
	if !numberOrAbsent(f[2]) || !numberOrAbsent(f[6]) {
		return fmt.Errorf("message.seq %s or conversation.version %s is not a number", f[2].Raw, f[6].Raw)
	}
	*r = inboundResp{
		ConversationID: f[0].String(),
		Message:        messageRef{ID: f[1].String(), Seq: f[2].Int(), ConversationID: f[3].String()},
		Conversation:   summaryRef{ID: f[4].String(), InboxID: f[5].String(), Version: f[6].Int()},
	}
	return nil
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
