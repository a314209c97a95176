package gateway

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/switchboard-dev/switchboard/wire"
)

// Short names for wire's error codes, which are the API's one vocabulary
// (wire owns them, their statuses and the error type).
const (
	codeInvalid         = wire.CodeInvalid
	codeUnauthorized    = wire.CodeUnauthorized
	codeForbidden       = wire.CodeForbidden
	codeNotFound        = wire.CodeNotFound
	codeConflict        = wire.CodeConflict
	codePayloadTooLarge = wire.CodePayloadTooLarge
	codeRateLimited     = wire.CodeRateLimited
	codeUnavailable     = wire.CodeUnavailable
	codeInternal        = wire.CodeInternal
)

// errorf is wire.Errorf: handlers return the error and writeErr renders it.
func errorf(code wire.Code, format string, args ...any) *wire.Error {
	return wire.Errorf(code, format, args...)
}

var (
	errUnauthorized = errorf(codeUnauthorized, "missing or invalid credentials")
	errForbidden    = errorf(codeForbidden, "this credential may not do that")
)

func notFound(what string) *wire.Error { return errorf(codeNotFound, "%s not found", what) }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, err error) {
	e := wire.ToError(err)
	writeJSON(w, e.Code.Status(), struct {
		Error *wire.Error `json:"error"`
	}{e})
}

// maxBody is the largest request body accepted (API.md: over 1 MiB → 413).
const maxBody = 1 << 20

// decode reads a JSON object body into v: 413 over 1 MiB, 400 on bad JSON.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return errorf(codeInvalid, "Content-Type must be application/json")
	}
	body := http.MaxBytesReader(w, r.Body, maxBody)
	dec := json.NewDecoder(body)
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return errorf(codePayloadTooLarge, "request body is over 1 MiB")
		}
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
	if _, err := io.Copy(io.Discard, body); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return errorf(codePayloadTooLarge, "request body is over 1 MiB")
		}
	}
	return nil
}
