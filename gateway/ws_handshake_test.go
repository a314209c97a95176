package gateway

import (
	"net/http/httptest"
	"testing"
)

// Every handshake websocket.Accept would refuse in plain text is refused
// before it, so that the answer is the API's JSON error; a valid one is not.
func TestHandshakeProblem(t *testing.T) {
	const key = "dGhlIHNhbXBsZSBub25jZQ==" // RFC 6455's sample key
	cases := []struct {
		name    string
		headers map[string][]string
		proto   string
		ok      bool
	}{
		{"valid", map[string][]string{"Sec-WebSocket-Key": {key}}, "", true},
		{"valid with token lists", map[string][]string{"Connection": {"keep-alive, Upgrade"}, "Upgrade": {"WebSocket"}, "Sec-WebSocket-Key": {" " + key + " "}}, "", true},
		{"no upgrade", map[string][]string{"Connection": {"keep-alive"}, "Upgrade": nil, "Sec-WebSocket-Key": {key}}, "", false},
		{"upgrade to something else", map[string][]string{"Upgrade": {"h2c"}, "Sec-WebSocket-Key": {key}}, "", false},
		{"no version", map[string][]string{"Sec-WebSocket-Version": nil, "Sec-WebSocket-Key": {key}}, "", false},
		{"version 8", map[string][]string{"Sec-WebSocket-Version": {"8"}, "Sec-WebSocket-Key": {key}}, "", false},
		{"no key", nil, "", false},
		{"two keys", map[string][]string{"Sec-WebSocket-Key": {key, key}}, "", false},
		{"key not base64", map[string][]string{"Sec-WebSocket-Key": {"not base64!"}}, "", false},
		{"key of 15 bytes", map[string][]string{"Sec-WebSocket-Key": {"AAAAAAAAAAAAAAAAAAAA"}}, "", false},
		{"HTTP/1.0", map[string][]string{"Sec-WebSocket-Key": {key}}, "HTTP/1.0", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/v1/ws", nil)
			r.Header.Set("Connection", "Upgrade")
			r.Header.Set("Upgrade", "websocket")
			r.Header.Set("Sec-WebSocket-Version", "13")
			for k, vs := range c.headers {
				r.Header.Del(k)
				for _, v := range vs {
					r.Header.Add(k, v)
				}
			}
			if c.proto == "HTTP/1.0" {
				r.Proto, r.ProtoMajor, r.ProtoMinor = c.proto, 1, 0
			}
			if msg := handshakeProblem(r); (msg == "") != c.ok {
				t.Fatalf("handshakeProblem = %q, want ok %v", msg, c.ok)
			}
		})
	}
}
