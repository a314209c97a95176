package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/switchboard-dev/switchboard/domain/validate"
	"github.com/switchboard-dev/switchboard/wire"
)

// Short names for wire's error codes, which are the API's one vocabulary
// (wire owns them, their statuses and the error type).
const (
	codeInvalid          = wire.CodeInvalid
	codeUnauthorized     = wire.CodeUnauthorized
	codeForbidden        = wire.CodeForbidden
	codeNotFound         = wire.CodeNotFound
	codeMethodNotAllowed = wire.CodeMethodNotAllowed
	codeConflict         = wire.CodeConflict
	codePayloadTooLarge  = wire.CodePayloadTooLarge
	codeRateLimited      = wire.CodeRateLimited
	codeUnavailable      = wire.CodeUnavailable
	codeInternal         = wire.CodeInternal
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

// member is one member of an answer object, its value JSON already
// encoded (nil is null).
type member struct {
	name  string // a plain ASCII name
	value []byte
}

// writeMembers answers with an object of already-encoded values, as the
// write endpoints do with what the conversation actor encoded: through
// writeJSON, encoding/json re-validated and re-compacted those bytes and a
// map was built, on every message ingested. The members are written one
// after the other into the response's own buffer, under a Content-Length
// counted first, rather than copied into an answer assembled beside it.
func writeMembers(w http.ResponseWriter, status int, members ...member) {
	n := len("{}\n") + max(len(members)-1, 0) // braces, newline, commas
	for _, m := range members {
		n += len(`"":`) + len(m.name) + len(m.valueOrNull())
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(n))
	w.WriteHeader(status)
	_, _ = io.WriteString(w, "{")
	for i, m := range members {
		if i > 0 {
			_, _ = io.WriteString(w, ",")
		}
		_, _ = io.WriteString(w, `"`)
		_, _ = io.WriteString(w, m.name)
		_, _ = io.WriteString(w, `":`)
		_, _ = w.Write(m.valueOrNull())
	}
	_, _ = io.WriteString(w, "}\n")
}

func (m member) valueOrNull() []byte {
	if m.value == nil {
		return jsonNull
	}
	return m.value
}

var jsonNull = []byte("null")

// jsonString encodes s as a JSON string value.
func jsonString(s string) []byte {
	b, _ := json.Marshal(s) // a string always encodes
	return b
}

// asAPIError maps any error onto what the client may see (wire.ToError); a
// domain validation error that reached here unwrapped is still the
// client's own mistake, with the rule's words.
func asAPIError(err error) *wire.Error {
	if _, ok := wire.AsError(err); !ok && errors.Is(err, validate.ErrInvalid) {
		return errorf(codeInvalid, "%s", err.Error())
	}
	return wire.ToError(err)
}

// withheld reports whether err's text is kept from the client, so that the
// caller logs it instead.
func withheld(err error) bool { return asAPIError(err) == wire.Withheld }

func writeErr(w http.ResponseWriter, err error) {
	e := asAPIError(err)
	writeJSON(w, e.Code.Status(), struct {
		Error *wire.Error `json:"error"`
	}{e})
}

// maxBody is the largest request body accepted (docs/api.md: over 1 MiB → 413).
const maxBody = 1 << 20

// decode reads a JSON object body into v: 413 over 1 MiB, 400 on bad JSON.
func decode(w http.ResponseWriter, r *http.Request, v any, notEmpty ...string) error {
	raw, err := readBody(w, r)
	if err != nil {
		return err
	}
	if err := decodeJSON(raw, v); err != nil {
		return err
	}
	return wire.RefuseEmpty(raw, notEmpty...)
}

// readBody reads a JSON request body: 413 over 1 MiB.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if err := checkContentType(r); err != nil {
		return nil, err
	}
	return readLimited(w, r)
}

// readLimited reads a request body: 413 over 1 MiB.
func readLimited(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, errorf(codePayloadTooLarge, "request body is over 1 MiB")
		}
		return nil, errorf(codeInvalid, "request body could not be read")
	}
	return raw, nil
}

func checkContentType(r *http.Request) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !isJSON(ct) {
		return errorf(codeInvalid, "Content-Type must be application/json")
	}
	// A compressed body read as JSON would be refused as malformed, and an
	// uncompressed one labelled compressed is a client's mistake: say so.
	if ce := r.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		return errorf(codeInvalid, "Content-Encoding %q is not supported: send the body uncompressed", ce)
	}
	return nil
}

// noBody reads the body of an endpoint that takes none, after its caller's
// role is checked and before it writes. Clients may send none or a JSON
// object (whose members mean nothing here, as unknown members mean nothing
// anywhere), but what they send is held to the rules of every body (413
// over 1 MiB, invalid_argument for anything but a JSON object) rather than
// ignored. The Content-Type counts only with a body: a bare POST from a
// tool that labels its empty body as a form is fine.
func noBody(w http.ResponseWriter, r *http.Request) error {
	raw, err := readLimited(w, r)
	if err != nil {
		return err
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil
	}
	if err := checkContentType(r); err != nil {
		return err
	}
	if raw[0] != '{' {
		return errorf(codeInvalid, "the body, when sent, must be a JSON object")
	}
	var members map[string]json.RawMessage
	return decodeJSON(raw, &members)
}

// isJSON reports whether a Content-Type names JSON: application/json or a
// +json type, in any case, with any parameters.
func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mt == "application/json" || strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

// decodeJSON decodes one JSON object. Invalid UTF-8 is refused here because
// encoding/json would silently turn it into U+FFFD, and the API asks for
// invalid_argument.
func decodeJSON(raw []byte, v any) error {
	if !utf8.Valid(raw) {
		return errorf(codeInvalid, "request body is not valid UTF-8")
	}
	// encoding/json decodes null into a struct as nothing at all, which
	// would make it an empty, valid request.
	if t := bytes.TrimLeft(raw, " \t\r\n"); len(t) > 0 && t[0] != '{' {
		return errorf(codeInvalid, "the request body must be a JSON object")
	}
	if err := wire.DecodeOne(raw, v); err != nil {
		if errors.Is(err, io.EOF) {
			return errorf(codeInvalid, "request body is empty")
		}
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return wire.WrongType(typeErr)
		}
		if errors.Is(err, wire.ErrControlChar) || errors.Is(err, wire.ErrLoneSurrogate) {
			return errorf(codeInvalid, "%v", err)
		}
		return errorf(codeInvalid, "malformed JSON: %v", err)
	}
	return nil
}
