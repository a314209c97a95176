package client

import (
	"fmt"
	"net/http"
	"time"
)

// Code is an API error code (the "code" of {"error": {"code", "message"}}).
type Code string

// The API's error codes.
const (
	CodeInvalidArgument  Code = "invalid_argument"
	CodeUnauthorized     Code = "unauthorized"
	CodeForbidden        Code = "forbidden"
	CodeNotFound         Code = "not_found"
	CodeMethodNotAllowed Code = "method_not_allowed"
	CodeConflict         Code = "conflict"
	CodePayloadTooLarge  Code = "payload_too_large"
	CodeRateLimited      Code = "rate_limited"
	CodeUnavailable      Code = "unavailable"
	CodeInternal         Code = "internal"
)

// Sentinels for errors.Is: errors.Is(err, client.ErrNotFound) holds for an
// *Error with that code, from REST and websocket alike.
var (
	ErrInvalidArgument  error = sentinel(CodeInvalidArgument)
	ErrUnauthorized     error = sentinel(CodeUnauthorized)
	ErrForbidden        error = sentinel(CodeForbidden)
	ErrNotFound         error = sentinel(CodeNotFound)
	ErrMethodNotAllowed error = sentinel(CodeMethodNotAllowed)
	ErrConflict         error = sentinel(CodeConflict)
	ErrPayloadTooLarge  error = sentinel(CodePayloadTooLarge)
	ErrRateLimited      error = sentinel(CodeRateLimited)
	ErrUnavailable      error = sentinel(CodeUnavailable)
	ErrInternal         error = sentinel(CodeInternal)
)

type sentinel Code

func (s sentinel) Error() string { return "switchboard: " + string(s) }

// Error is an error answer of the server: a REST response with an error
// status, or a websocket error frame (Status 0).
type Error struct {
	// Status is the HTTP status; 0 for a websocket error frame.
	Status int
	// Code is the API's error code; a response without the API's error body
	// (a proxy's 502, say) gets the code its status stands for.
	Code    Code
	Message string
	// RetryAfter is what the Retry-After header asked for (429, 503).
	RetryAfter time.Duration
	// Method and Path name the request (empty for websocket frames).
	Method, Path string
}

func (e *Error) Error() string {
	where := ""
	if e.Method != "" {
		where = e.Method + " " + e.Path + ": "
	}
	if e.Status != 0 {
		return fmt.Sprintf("switchboard: %s%d %s: %s", where, e.Status, e.Code, e.Message)
	}
	return fmt.Sprintf("switchboard: %s%s: %s", where, e.Code, e.Message)
}

// Is matches the sentinel of e's code.
func (e *Error) Is(target error) bool {
	s, ok := target.(sentinel)
	return ok && Code(s) == e.Code
}

// codeForStatus names the code of a response that did not say one.
func codeForStatus(status int) Code {
	switch status {
	case http.StatusBadRequest:
		return CodeInvalidArgument
	case http.StatusUnauthorized:
		return CodeUnauthorized
	case http.StatusForbidden:
		return CodeForbidden
	case http.StatusNotFound:
		return CodeNotFound
	case http.StatusMethodNotAllowed:
		return CodeMethodNotAllowed
	case http.StatusConflict:
		return CodeConflict
	case http.StatusRequestEntityTooLarge:
		return CodePayloadTooLarge
	case http.StatusTooManyRequests:
		return CodeRateLimited
	case http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusGatewayTimeout:
		return CodeUnavailable
	}
	return CodeInternal
}
