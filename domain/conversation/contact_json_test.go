package conversation

import (
	"encoding/json"
	"testing"
	"time"
)

// contactJSONReference is what Contact.MarshalJSON must write, byte for
// byte: every field the API lists, null when unset.
func contactJSONReference(c Contact) []byte {
	orNull := func(s string) *string {
		if s == "" {
			return nil
		}
		return &s
	}
	b, _ := json.Marshal(struct {
		ID       string  `json:"id"`
		Phone    *string `json:"phone"`
		Email    *string `json:"email"`
		Handle   *string `json:"handle"`
		Name     *string `json:"name"`
		OptedOut bool    `json:"opted_out"`
	}{c.ID, orNull(c.Phone), orNull(c.Email), orNull(c.Handle), orNull(c.Name), c.OptedOut})
	return b
}

func TestContactJSONMatchesReference(t *testing.T) {
	strs := []string{"", "plain", "+14155550123", "a@b.example", `q"uote`, `back\slash`, "<b>&amp;</b>",
		"tab\there", "nl\n", "\x00nul", "\x7fdel", "Zoë", "日本", "\u2028sep", "bad\xffutf8", "emoji 🎉"}
	for i, s := range strs {
		c := Contact{ID: "ct_" + s, Phone: s, Email: strs[(i+1)%len(strs)], Handle: strs[(i+2)%len(strs)], Name: strs[(i+3)%len(strs)], OptedOut: i%2 == 0}
		got, err := json.Marshal(c) // through encoding/json, as summaries are
		if err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
		if want := contactJSONReference(c); string(got) != string(want) {
			t.Errorf("%+v:\n got %s\nwant %s", c, got, want)
		}
		var back Contact
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("%s does not decode: %v", got, err)
		}
	}
}

func BenchmarkContactJSON(b *testing.B) {
	c := Contact{ID: "ct_0123456789abcdef", Phone: "+14155550123", Name: "Ada Lovelace"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkContactJSONReference(b *testing.B) {
	c := Contact{ID: "ct_0123456789abcdef", Phone: "+14155550123", Name: "Ada Lovelace"}
	b.ReportAllocs()
	for b.Loop() {
		contactJSONReference(c)
	}
}

// BenchmarkSummaryJSON encodes a summary as the conversation actor does
// once per event (AppendJSON), and through encoding/json's reflection.
func BenchmarkSummaryJSON(b *testing.B) {
	at := time.Date(2026, 11, 30, 12, 0, 0, 123456789, time.UTC)
	s := Summary{ID: "cv_0123456789abcdef", AccountID: "acc_0123", InboxID: "inb_0123", Status: "open",
		Contact: Contact{ID: "ct_0123456789abcdef", Phone: "+14155550123", Name: "Ada Lovelace"},
		Tags:    []string{"vip"}, Channel: "sms", Version: 42, LastActivityAt: at, WaitingSince: &at, UnreadCount: 3,
		LastMessage: &LastMessage{ID: "msg_0123456789abcdef", Seq: 42, Direction: Inbound, Kind: KindMessage,
			Body: "a message body of a typical length", CreatedAt: at}}
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 1024)
		for b.Loop() {
			if _, err := s.AppendJSON(buf[:0]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("reflect", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := summaryJSONReference(&s); err != nil {
				b.Fatal(err)
			}
		}
	})
}
