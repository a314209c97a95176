package indexer

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/domain/conversation"
)

// sameItemAsEncodingJSON fails t when decodeItem answers differently from
// encoding/json, values and errors alike; it reports whether the fast path
// took raw.
func sameItemAsEncodingJSON(t *testing.T, raw []byte) (plain bool) {
	t.Helper()
	var want *conversation.Item
	wantErr := json.Unmarshal(raw, &want)
	got, err := decodeItem(raw)
	if (err != nil) != (wantErr != nil) || (err != nil && err.Error() != wantErr.Error()) {
		t.Fatalf("%q: error %v, encoding/json %v", raw, err, wantErr)
	}
	if err == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("%q:\n got %+v\nwant %+v", raw, got, want)
	}
	return plainItem(raw, new(conversation.Item))
}

// TestItemDecodesAsEncodingJSON: items as the writer stores them (every
// optional field present or not, text that needs escaping), and near misses
// (other cases, repeated and unknown names, wrong types, numbers that are not
// int64, bad times, surrogate escapes, broken syntax, null), decode as
// encoding/json decodes them; and the fast path takes the stored shape.
func TestItemDecodesAsEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	plain := 0
	const n = 20000
	for range n {
		if sameItemAsEncodingJSON(t, randomItemJSON(r)) {
			plain++
		}
	}
	if plain < n/4 {
		t.Fatalf("the fast path took %d of %d items: the generator no longer makes the stored shape", plain, n)
	}
	t.Logf("fast path took %d of %d generated items", plain, n)
}

// FuzzItemDecode holds decodeItem to encoding/json on any input.
func FuzzItemDecode(f *testing.F) {
	r := rand.New(rand.NewPCG(13, 13))
	for range 40 {
		f.Add(randomItemJSON(r))
	}
	f.Add([]byte(`null`))
	f.Add([]byte(`{"id":"a","id":"b"}`))
	f.Fuzz(func(t *testing.T, raw []byte) { sameItemAsEncodingJSON(t, raw) })
}

func randomItemJSON(r *rand.Rand) []byte {
	strs := []string{"", "plain", `q"uote`, "<b>&amp;</b>", "tab\there", "\x00nul", "Zoë", "bad\xffutf8", "emoji 🎉", "한국", "message"}
	str := func() string { return strs[r.IntN(len(strs))] }
	tm := func() time.Time {
		return time.Unix(r.Int64N(4102444800), int64(r.IntN(1e9))).In(time.FixedZone("", 3600*(r.IntN(25)-12)))
	}
	it := conversation.Item{ID: str(), Seq: r.Int64N(1 << 40), Direction: conversation.Direction(str()), Kind: conversation.ItemKind(str()),
		Channel: conversation.Channel(str()), Body: str() + str(), CreatedAt: tm(), ExternalID: str(), ClientID: str(), AuthorID: str(),
		CallID: str(), State: conversation.CallState(str()), RecordingURL: str(), Status: conversation.DeliveryStatus(str()),
		ErrorCode: str(), ProviderMessageID: str()}
	if r.IntN(2) == 0 {
		it.DurationS = r.Int64N(7200) - 10
	}
	if r.IntN(2) == 0 {
		it.UpdatedAt = tm()
	}
	raw, _ := it.AppendJSON(nil)
	s := string(raw)
	// Near misses, one in three.
	switch r.IntN(48) {
	case 0:
		s = strings.Replace(s, `"body"`, `"Body"`, 1)
	case 1:
		s = strings.Replace(s, `{"id":`, `{"id":"dup","id":`, 1)
	case 2:
		s = strings.Replace(s, `"seq":`, `"seq":1.5,"x":`, 1)
	case 3:
		s = strings.Replace(s, `"seq":`, `"seq":"7","y":`, 1)
	case 4:
		s = strings.Replace(s, `"seq":`, `"seq":99999999999999999999,"z":`, 1)
	case 5:
		s = strings.Replace(s, `"created_at":"`, `"created_at":"x`, 1)
	case 6:
		s = strings.Replace(s, `"body":"`, `"body":"\ud800 \u00e9 `, 1)
	case 7:
		s = strings.Replace(s, `"body":"`, `"body":"\u00e9\n\"`, 1)
	case 8:
		s = strings.Replace(s, `"kind":`, `"kind":null,"k":`, 1)
	case 9:
		s = s[:len(s)/2]
	case 10:
		s = "null"
	case 11:
		s = strings.Replace(s, `"id":`, `"unknown":1,"id":`, 1)
	case 12:
		s = strings.Replace(s, `"created_at":`, `"created_at":123,"c":`, 1)
	case 13:
		s += " "
	case 14:
		s = strings.Replace(s, `"seq":`, `"seq":-0,"s":`, 1)
	case 15:
		s = strings.Replace(s, `"body":`, `"body":["x"],"b":`, 1)
	}
	return []byte(s)
}

// BenchmarkItemDecode: a stored message item through the fast path and
// through encoding/json.
//
//	go test -run '^$' -bench ItemDecode -benchmem ./consumers/indexer
func BenchmarkItemDecode(b *testing.B) {
	raw := []byte(`{"id":"msg_79eb99f8d4d4ae05a09d5679f196ac","seq":1,"direction":"inbound","kind":"message","channel":"sms","body":"loadtest message ltabcn123","created_at":"2026-12-01T10:08:24.253980469Z","external_id":"lt-1-m123"}`)
	b.Run("plain", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeItem(raw); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var it *conversation.Item
			if err := json.Unmarshal(raw, &it); err != nil {
				b.Fatal(err)
			}
		}
	})
}
