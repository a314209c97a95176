package loadtest

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// decodeAnswer must read an inbound answer as encoding/json would, and
// refuse what encoding/json refuses, or a broken answer would pass as an
// acknowledged write.
func TestInboundAnswerDecodesLikeEncodingJSON(t *testing.T) {
	for _, tc := range []struct {
		name, answer string
		bad          bool
	}{
		{name: "full", answer: `{"conversation_id":"cv_1","message":{"id":"msg_1","seq":7,"conversation_id":"cv_1","body":"hi \"there\""},
			"conversation":{"id":"cv_1","inbox_id":"ib_1","version":12,"last_message":{"seq":99}},"extra":[1,2]}`},
		{name: "nulls and absences", answer: `{"conversation_id":"cv_1","message":{"id":"msg_1","seq":null},"conversation":{"id":"cv_1"}}`},
		{name: "truncated", answer: `{"conversation_id":"cv_1","message":{"id":"msg_1","seq":7`, bad: true},
		{name: "seq as a string", answer: `{"message":{"seq":"7"}}`, bad: true},
		{name: "version as an object", answer: `{"conversation":{"version":{}}}`, bad: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var want, got inboundResp
			wantErr := json.Unmarshal([]byte(tc.answer), &want)
			err := got.decodeAnswer([]byte(tc.answer))
			if (wantErr != nil) != tc.bad || (err != nil) != tc.bad {
				t.Fatalf("encoding/json err %v, decodeAnswer err %v; want failure: %v", wantErr, err, tc.bad)
			}
			if !tc.bad && got != want {
				t.Fatalf("decodeAnswer %+v, encoding/json %+v", got, want)
			}
		})
	}
}

// The measured writes dial the --url's host on its port, or the scheme's.
func TestWritesDialTheURLsPort(t *testing.T) {
	for url, want := range map[string]string{
		"http://127.0.0.1:8080": "127.0.0.1:8080",
		"http://localhost":      "localhost:80",
		"https://example.test":  "example.test:443",
		"https://[::1]:8443/":   "[::1]:8443",
	} {
		c, err := newAPIClient(url, time.Second, 4)
		if err != nil {
			t.Fatalf("%s: %v", url, err)
		}
		if c.writes.Addr != want || c.writes.IsTLS != strings.HasPrefix(url, "https:") {
			t.Errorf("%s: dials %s (TLS %v), want %s", url, c.writes.Addr, c.writes.IsTLS, want)
		}
	}
}
