package wire

import (
	"errors"
	"fmt"
	"net/http"
)

// Code is an API error code (docs/api.md "Errors"). REST answers and websocket
// error frames carry the same codes.
type Code string

// The API's error codes.
const (
	CodeInvalid          Code = "invalid_argument"
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

// Status is the HTTP status a code is answered with; 0 for a code the API
// does not define.
func (c Code) Status() int {
	switch c {
	case CodeInvalid:
		return http.StatusBadRequest
	case CodeUnauthorized:
		return http.StatusUnauthorized
	case CodeForbidden:
		return http.StatusForbidden
	case CodeNotFound:
		return http.StatusNotFound
	case CodeMethodNotAllowed:
		return http.StatusMethodNotAllowed
	case CodeConflict:
		return http.StatusConflict
	case CodePayloadTooLarge:
		return http.StatusRequestEntityTooLarge
	case CodeRateLimited:
		return http.StatusTooManyRequests
	case CodeUnavailable:
		return http.StatusServiceUnavailable
	case CodeInternal:
		return http.StatusInternalServerError
	}
	return 0
}

// Known reports whether the API defines c.
func (c Code) Known() bool { return c.Status() != 0 }

// Error is an error with an API code: what REST handlers return, what actors
// answer with, and the "error" object of a REST body or websocket frame.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// Errorf returns an Error with a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// AsError finds an Error in err's chain.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// Withheld is all a client learns of a failure inside the server. Such a
// failure's own text may describe the database, or other tenants' requests
// that shared a commit; it goes to the log only (see IsWithheld).
var Withheld = &Error{Code: CodeUnavailable, Message: "the service is temporarily unavailable; retry the request"}

// ToError maps any error onto what a client may see: an Error whose code is
// about the client's own request (invalid, unauthorized, forbidden, not
// found, conflict, too large, rate limited) keeps its text; everything else
// — unavailable, internal, an actor's internal code, a plain Go error — is
// Withheld.
func ToError(err error) *Error {
	if e, ok := AsError(err); ok {
		switch e.Code {
		case CodeInvalid, CodeUnauthorized, CodeForbidden, CodeNotFound, CodeMethodNotAllowed, CodeConflict, CodePayloadTooLarge, CodeRateLimited:
			return e
		}
	}
	return Withheld
}

// IsWithheld reports whether ToError keeps err's text from the client, so
// that the caller logs it instead.
func IsWithheld(err error) bool { return ToError(err) == Withheld }
