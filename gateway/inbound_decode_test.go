package gateway

import (
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/switchboard-dev/switchboard/wire"
)

// sameAsEncodingJSON fails t when decodePlain accepts raw but encoding/json
// (decodeJSON) would decode it differently or refuse it.
func sameAsEncodingJSON(t *testing.T, raw []byte) (plain bool) {
	t.Helper()
	var fast inboundIn
	if wire.CheckText(raw) != nil || !fast.decodePlain(raw) {
		return false
	}
	var slow inboundIn
	if err := decodeJSON(raw, &slow); err != nil {
		t.Fatalf("decodePlain accepted %q, encoding/json refused it: %v", raw, err)
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Fatalf("%q:\n plain %+v (contact %+v)\n  json %+v (contact %+v)", raw, fast, fast.Contact, slow, slow.Contact)
	}
	return true
}

// TestInboundPlainDecodesAsEncodingJSON: over many generated bodies, near
// misses included (other cases, repeated or unknown names, escapes, nulls,
// numbers, broken syntax, trailing data), whatever the fast path accepts
// encoding/json decodes to the same values; and the fast path does take
// the common shape.
func TestInboundPlainDecodesAsEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	plain := 0
	const n = 20000
	for range n {
		if sameAsEncodingJSON(t, []byte(randomInboundBody(r))) {
			plain++
		}
	}
	if plain < n/10 {
		t.Fatalf("the fast path took %d of %d bodies: the generator no longer makes the common shape", plain, n)
	}
	t.Logf("fast path took %d of %d generated bodies", plain, n)
	for _, body := range []string{
		`{"contact":{"phone":"+14155550100"},"body":"hi","channel":"sms","external_id":"e1"}`,
		` { "body" : "line\nbreak \"quoted\" back\\slash \/ tab\t" , "contact" : { "name" : "Zoë" } } `,
	} {
		if !sameAsEncodingJSON(t, []byte(body)) {
			t.Errorf("the fast path refused the common shape %q", body)
		}
	}
}

// FuzzInboundPlainDecode holds the fast path to encoding/json on any input
// (`go test` runs the seeds; `go test -fuzz FuzzInboundPlainDecode` explores).
func FuzzInboundPlainDecode(f *testing.F) {
	r := rand.New(rand.NewPCG(8, 8))
	for range 50 {
		f.Add([]byte(randomInboundBody(r)))
	}
	f.Add([]byte(`{"contact":{"phone":"1"},"body":"a"}`))
	f.Add([]byte("{\"body\":\"\xff\"}"))
	f.Fuzz(func(t *testing.T, raw []byte) { sameAsEncodingJSON(t, raw) })
}

func randomInboundBody(r *rand.Rand) string {
	pick := func(xs ...string) string { return xs[r.IntN(len(xs))] }
	ws := func() string {
		if r.IntN(4) == 0 {
			return pick(" ", "\n", "\t", "  \r\n")
		}
		return ""
	}
	str := func() string {
		var sb strings.Builder
		sb.WriteByte('"')
		for range r.IntN(8) {
			sb.WriteString(pick("a", "Z", "0", " ", "é", "日", "😀", `\n`, `\t`, `\"`, `\\`, `\/`, `\b`, `\f`, `\r`,
				`\u00e9`, `\ud83d\ude00`, `\ud800`, `\u0000`, "+1415"))
		}
		if r.IntN(40) == 0 {
			sb.WriteString(pick("\x01", `\x`, "\n")) // invalid in a JSON string
		}
		sb.WriteByte('"')
		return sb.String()
	}
	value := func() string {
		switch r.IntN(12) {
		case 0:
			return pick("null", "1", "true", "[]", `["a"]`, "{}", "-0.5e3")
		default:
			return str()
		}
	}
	object := func(names []string, inner func(string) string) string {
		var sb strings.Builder
		sb.WriteString(ws() + "{")
		k := r.IntN(len(names) + 1)
		for i := range k {
			if i > 0 {
				sb.WriteString(ws() + "," + ws())
			}
			name := names[r.IntN(len(names))]
			switch r.IntN(20) {
			case 0:
				name = strings.ToUpper(name[:1]) + name[1:]
			case 1:
				name = pick("unknown", "metadata", "bod\\u0079", "")
			}
			sb.WriteString(ws() + `"` + name + `"` + ws() + ":" + ws() + inner(name))
		}
		if r.IntN(30) == 0 {
			sb.WriteString(",") // trailing comma: invalid
		}
		sb.WriteString(ws() + "}" + ws())
		return sb.String()
	}
	contact := func() string {
		if r.IntN(10) == 0 {
			return value()
		}
		return object([]string{"phone", "email", "handle", "name"}, func(string) string { return value() })
	}
	body := object([]string{"contact", "body", "channel", "external_id"}, func(name string) string {
		if name == "contact" {
			return contact()
		}
		return value()
	})
	switch r.IntN(30) {
	case 0:
		body += pick(`{}`, "x", `"a"`)
	case 1:
		body = pick("[]", "null", `"s"`, "", "{")
	}
	return body
}

// BenchmarkInboundDecode compares the fast path with encoding/json on the
// load tool's body.
//
//	go test -run '^$' -bench InboundDecode -benchmem ./gateway
func BenchmarkInboundDecode(b *testing.B) {
	raw := []byte(`{"contact":{"phone":"+14155550123","name":"Contact 123"},"body":"benchmark message body of a typical length","channel":"sms","external_id":"lt-1-123456"}`)
	// decodeInbound checks the text, then decodes; a body of several lines
	// makes the check find where the body is.
	lines := []byte(`{"contact":{"phone":"+14155550123","name":"Contact 123"},"body":"benchmark message\nbody of a typical\nlength","channel":"sms","external_id":"lt-1-123456"}`)
	for _, c := range []struct {
		name    string
		raw     []byte
		checked bool
	}{{"plain", raw, false}, {"checked+plain", raw, true}, {"plain-lines", lines, false}, {"checked+plain-lines", lines, true}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var in inboundIn
				if (c.checked && wire.CheckText(c.raw) != nil) || !in.decodePlain(c.raw) {
					b.Fatal("refused")
				}
			}
		})
	}
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var in inboundIn
			if err := decodeJSON(raw, &in); err != nil {
				b.Fatal(err)
			}
		}
	})
}
