package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestServerFrames(t *testing.T) {
	ref := json.RawMessage(`"r1"`)
	summary := json.RawMessage(`{"id":"c1","version":3}`)
	counts := json.RawMessage(`{"open":1}`)
	for _, c := range []struct {
		name  string
		frame Frame
		kind  Kind
		typ   string
		want  map[string]any // fields checked after decoding
	}{
		{"update", Update("in1", "e1", 7, summary, counts), KindUpdate, "update",
			map[string]any{"inbox_id": "in1", "epoch": "e1", "seq": 7.0}},
		{"snapshot", Snapshot("in1", "e1", 7, nil, 0, counts), KindSnapshot, "snapshot",
			map[string]any{"inbox_id": "in1", "seq": 7.0, "total": 0.0, "conversations": []any{}}},
		{"item", Item("c1", json.RawMessage(`{"id":"m1"}`)), KindReply, "item",
			map[string]any{"conversation_id": "c1", "item": map[string]any{"id": "m1"}}},
		{"typing", Typing("c1", "ag1"), KindTyping, "typing",
			map[string]any{"conversation_id": "c1", "agent_id": "ag1"}},
		{"presence", Presence("c1", nil), KindReply, "presence",
			map[string]any{"conversation_id": "c1", "agents": []any{}}},
		{"subscribed", Subscribed(ref, "in1", "e1", 4, true), KindReply, "subscribed",
			map[string]any{"ref": "r1", "inbox_id": "in1", "epoch": "e1", "seq": 4.0, "resumed": true}},
		{"resync", Resync("in1", ReasonSlowConsumer), KindResync, "resync",
			map[string]any{"inbox_id": "in1", "reason": "slow_consumer"}},
		{"error", ErrorFrame(ref, Errorf(CodeConflict, "stale")), KindReply, "error",
			map[string]any{"ref": "r1", "error": map[string]any{"code": "conflict", "message": "stale"}}},
		{"error hides internals", ErrorFrame(nil, errors.New("pq: password")), KindReply, "error",
			map[string]any{"error": map[string]any{"code": "unavailable", "message": Withheld.Message}}},
		{"ack message", AckMessage(ref, json.RawMessage(`{"id":"m1"}`)), KindReply, "ack",
			map[string]any{"ref": "r1", "message": map[string]any{"id": "m1"}}},
		{"ack conversation", AckConversation(nil, summary), KindReply, "ack",
			map[string]any{"conversation": map[string]any{"id": "c1", "version": 3.0}}},
		{"watching", Watching(ref, "c1", 9), KindReply, "watching",
			map[string]any{"ref": "r1", "conversation_id": "c1", "version": 9.0}},
		{"pong", Pong(ref), KindReply, "pong", map[string]any{"ref": "r1"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.frame.Kind != c.kind {
				t.Errorf("kind %s, want %s", c.frame.Kind, c.kind)
			}
			// The type comes first: a reader of the bytes (a log, a
			// browser's devtools) sees what the frame is at once.
			if prefix := `{"type":"` + c.typ + `"`; !bytes.HasPrefix(c.frame.Data, []byte(prefix)) {
				t.Errorf("frame %s does not start with %s", c.frame.Data, prefix)
			}
			var got map[string]any
			if err := json.Unmarshal(c.frame.Data, &got); err != nil {
				t.Fatalf("frame %s is not JSON: %v", c.frame.Data, err)
			}
			for k, v := range c.want {
				if g, _ := json.Marshal(got[k]); string(g) != mustJSON(t, v) {
					t.Errorf("%s = %s, want %s", k, g, mustJSON(t, v))
				}
			}
			if _, ok := got["ref"]; !ok && c.want["ref"] != nil {
				t.Error("ref missing")
			}
		})
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The spliced frames equal what encoding/json makes of the same fields, with
// strings that need escaping.
func TestSplicedFramesMatchEncoding(t *testing.T) {
	odd := "in\"1\\<\u2028>"
	summary := json.RawMessage(`{"id":"c1"}`)
	got := Update(odd, "e\n1", -1, summary, json.RawMessage(`{}`)).Data
	want, _ := json.Marshal(struct {
		Type         string          `json:"type"`
		InboxID      string          `json:"inbox_id"`
		Epoch        string          `json:"epoch"`
		Seq          int64           `json:"seq"`
		Conversation json.RawMessage `json:"conversation"`
		Counts       json.RawMessage `json:"counts"`
	}{"update", odd, "e\n1", -1, summary, json.RawMessage(`{}`)})
	if !bytes.Equal(got, want) {
		t.Errorf("update\n got %s\nwant %s", got, want)
	}
	got = Item(odd, summary).Data
	want, _ = json.Marshal(struct {
		Type           string          `json:"type"`
		ConversationID string          `json:"conversation_id"`
		Item           json.RawMessage `json:"item"`
	}{"item", odd, summary})
	if !bytes.Equal(got, want) {
		t.Errorf("item\n got %s\nwant %s", got, want)
	}
}

// Encoding is deterministic: the same frame twice is the same bytes.
func TestFramesAreDeterministic(t *testing.T) {
	for range 20 {
		if a, b := Typing("c1", "ag1").Data, Typing("c1", "ag1").Data; !bytes.Equal(a, b) {
			t.Fatalf("%s != %s", a, b)
		}
	}
}

// A summary that is not JSON cannot produce a broken frame: the client gets
// an internal error frame instead.
func TestSnapshotOfBrokenJSONIsAnError(t *testing.T) {
	f := Snapshot("in1", "e1", 1, json.RawMessage(`[{`), 0, nil)
	if f.Kind != KindReply || !strings.Contains(string(f.Data), `"code":"internal"`) {
		t.Fatalf("got %s %s", f.Kind, f.Data)
	}
}

func TestCodes(t *testing.T) {
	for code, status := range map[Code]int{CodeInvalid: 400, CodeUnauthorized: 401, CodeForbidden: 403,
		CodeNotFound: 404, CodeConflict: 409, CodePayloadTooLarge: 413, CodeRateLimited: 429,
		CodeUnavailable: 503, CodeInternal: 500, "retry": 0} {
		if got := code.Status(); got != status {
			t.Errorf("%s: status %d, want %d", code, got, status)
		}
	}
	wrapped := errors.Join(errors.New("context"), Errorf(CodeNotFound, "inbox not found"))
	if e := ToError(wrapped); e.Code != CodeNotFound {
		t.Errorf("wrapped: %v", e)
	}
	// Failures inside the server never reach the client with their text:
	// it may name the database or another tenant's request.
	for _, err := range []error{&Error{Code: "retry", Message: "fenced"}, Errorf(CodeUnavailable, "batch of 6: append batch: ERROR"),
		Errorf(CodeInternal, "boom"), errors.New("dial tcp 10.0.0.5:5432: refused")} {
		if e := ToError(err); e != Withheld || !IsWithheld(err) {
			t.Errorf("%v: answered %v, want it withheld", err, e)
		}
	}
}
