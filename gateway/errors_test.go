package gateway

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/switchboard-dev/switchboard/wire"
)

// writeMembers answers what writeJSON answers for the same members:
// status, content type and the same JSON value (null for a nil value).
func TestWriteMembersMatchesWriteJSON(t *testing.T) {
	item := []byte(`{"id":"msg_1","body":"a \u003cb\u003e \"quoted\" body","seq":3}`)
	summary := []byte(`{"id":"cv_1","tags":[],"version":4}`)
	spliced, encoded := httptest.NewRecorder(), httptest.NewRecorder()
	writeMembers(spliced, http.StatusCreated, member{"conversation_id", jsonString(`cv_"1"`)}, member{"message", item},
		member{"conversation", summary}, member{"call", nil})
	writeJSON(encoded, http.StatusCreated, map[string]any{"conversation_id": `cv_"1"`, "message": json.RawMessage(item),
		"conversation": json.RawMessage(summary), "call": nil})
	if spliced.Code != encoded.Code || spliced.Header().Get("Content-Type") != encoded.Header().Get("Content-Type") {
		t.Fatalf("status %d %q, want %d %q", spliced.Code, spliced.Header().Get("Content-Type"), encoded.Code, encoded.Header().Get("Content-Type"))
	}
	var got, want any
	if err := json.Unmarshal(spliced.Body.Bytes(), &got); err != nil {
		t.Fatalf("invalid JSON %s: %v", spliced.Body.Bytes(), err)
	}
	if err := json.Unmarshal(encoded.Body.Bytes(), &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %s\nwant %s", spliced.Body.Bytes(), encoded.Body.Bytes())
	}
	if cl := spliced.Header().Get("Content-Length"); cl != strconv.Itoa(spliced.Body.Len()) {
		t.Fatalf("Content-Length %q for a body of %d bytes", cl, spliced.Body.Len())
	}
}

// A body is a JSON object: null in particular, which encoding/json decodes
// into a struct as nothing, is no empty request.
func TestDecodeJSONTakesObjectsOnly(t *testing.T) {
	var v struct {
		Status *string `json:"status"`
	}
	for _, raw := range []string{`null`, ` null`, `[]`, `"x"`, `1`, `true`} {
		if err := decodeJSON([]byte(raw), &v); err == nil {
			t.Errorf("%s accepted", raw)
		}
	}
	for _, raw := range []string{`{}`, " \n{\"status\":\"open\"}"} {
		if err := decodeJSON([]byte(raw), &v); err != nil {
			t.Errorf("%s: %v", raw, err)
		}
	}
}

// TestReadBodyChecksItsLabels: a body is JSON in any spelling of its media
// type, or unlabelled, and never compressed.
func TestReadBodyChecksItsLabels(t *testing.T) {
	for _, c := range []struct {
		contentType, encoding string
		ok                    bool
	}{
		{"", "", true},
		{"application/json; charset=utf-8", "", true},
		{"APPLICATION/JSON", "identity", true},
		{"text/plain", "", false},
		{"application/json", "gzip", false},
		{"", "br", false},
	} {
		r := httptest.NewRequest("POST", "/v1/inboxes", strings.NewReader(`{"name":"x"}`))
		if c.contentType != "" {
			r.Header.Set("Content-Type", c.contentType)
		}
		if c.encoding != "" {
			r.Header.Set("Content-Encoding", c.encoding)
		}
		raw, err := readBody(httptest.NewRecorder(), r)
		if c.ok && (err != nil || string(raw) != `{"name":"x"}`) {
			t.Errorf("%q %q: %q %v, want the body", c.contentType, c.encoding, raw, err)
		}
		if e, isAPI := wire.AsError(err); !c.ok && (!isAPI || e.Code != codeInvalid) {
			t.Errorf("%q %q: %v, want invalid_argument", c.contentType, c.encoding, err)
		}
	}
}
