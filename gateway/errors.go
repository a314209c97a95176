package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/switchboard-dev/switchboard/actors"
	"github.com/switchboard-dev/switchboard/domain/validate"
)

// API error codes and their statuses (API.md "Errors").
const (
	codeInvalid         = "invalid_argument"
	codeUnauthorized    = "unauthorized"
	codeForbidden       = "forbidden"
	codeNotFound        = "not_found"
	codeConflict        = "conflict"
	codePayloadTooLarge = "payload_too_large"
	codeRateLimited     = "rate_limited"
	codeUnavailable     = "unavailable"
	codeInternal        = "internal"
)

var statusOf = map[string]int{
	codeInvalid:         http.StatusBadRequest,
	codeUnauthorized:    http.StatusUnauthorized,
	codeForbidden:       http.StatusForbidden,
	codeNotFound:        http.StatusNotFound,
	codeConflict:        http.StatusConflict,
	codePayloadTooLarge: http.StatusRequestEntityTooLarge,
	codeRateLimited:     http.StatusTooManyRequests,
	codeUnavailable:     http.StatusServiceUnavailable,
	codeInternal:        http.StatusInternalServerError,
}

// apiError is an error with an API code; handlers return it and writeErr
// renders it.
type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func errorf(code, format string, args ...any) *apiError {
	return &apiError{Code: code, Message: fmt.Sprintf(format, args...)}
}

var (
	errUnauthorized = errorf(codeUnauthorized, "missing or invalid credentials")
	errForbidden    = errorf(codeForbidden, "this credential may not do that")
)

func notFound(what string) *apiError { return errorf(codeNotFound, "%s not found", what) }

// errWithheld is all a client learns of a failure inside the server: the
// failure's own text may describe the database, or other tenants' requests
// that shared a commit, so it goes to the log only.
var errWithheld = errorf(codeUnavailable, "the service is temporarily unavailable; retry the request")

// asAPIError maps any error onto the API's codes. Only the gateway's own
// errors and the actors' client-facing refusals keep their text.
func asAPIError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	if ge, ok := actors.AsError(err); ok {
		switch ge.Code {
		case codeInvalid, codeNotFound, codeConflict, codeForbidden:
			return &apiError{Code: ge.Code, Message: ge.Message}
		}
		return errWithheld
	}
	if errors.Is(err, validate.ErrInvalid) {
		return &apiError{Code: codeInvalid, Message: err.Error()}
	}
	return errWithheld
}

// withheld reports whether err's text is kept from the client, so the
// caller logs it instead.
func withheld(err error) bool { return asAPIError(err) == errWithheld }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, err error) {
	ae := asAPIError(err)
	status, ok := statusOf[ae.Code]
	if !ok {
		status = http.StatusInternalServerError
	}
	writeJSON(w, status, map[string]any{"error": ae})
}

// maxBody is the largest request body accepted (API.md: over 1 MiB → 413).
const maxBody = 1 << 20

// decode reads a JSON object body into v: 413 over 1 MiB, 400 on bad JSON.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return errorf(codeInvalid, "Content-Type must be application/json")
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return errorf(codePayloadTooLarge, "request body is over 1 MiB")
		}
		return errorf(codeInvalid, "request body could not be read")
	}
	return decodeJSON(raw, v)
}

// decodeJSON decodes one JSON object (a REST body or a websocket frame).
// Invalid UTF-8 is refused here because encoding/json would silently turn
// it into U+FFFD, and API.md asks for invalid_argument.
func decodeJSON(raw []byte, v any) error {
	if !utf8.Valid(raw) {
		return errorf(codeInvalid, "request body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return errorf(codeInvalid, "request body is empty")
		}
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return errorf(codeInvalid, "field %q has the wrong type", typeErr.Field)
		}
		return errorf(codeInvalid, "malformed JSON: %v", err)
	}
	if dec.More() {
		return errorf(codeInvalid, "malformed JSON: trailing data")
	}
	return nil
}
