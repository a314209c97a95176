package conversation

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// summaryJSONReference is what Summary.AppendJSON must write, byte for
// byte: encoding/json's encoding from the field tags.
func summaryJSONReference(s *Summary) ([]byte, error) {
	return json.Marshal(s)
}

// randomSummary sets every field, each optional one present or not, from
// strings that need escaping and times in several zones and precisions.
func randomSummary(r *rand.Rand) Summary {
	strs := []string{"", "plain", "+14155550123", `q"uote`, `back\slash`, "<b>&amp;</b>", "tab\there", "\x00nul",
		"\x7fdel", "Zoë", "日本", "\u2028sep", "bad\xffutf8", "emoji 🎉", "open", "sms"}
	str := func() string { return strs[r.IntN(len(strs))] }
	zones := []*time.Location{time.UTC, time.FixedZone("", 5*3600+1800), time.FixedZone("X", -7*3600), time.Local}
	tm := func() time.Time {
		t := time.Unix(r.Int64N(4102444800), 0).In(zones[r.IntN(len(zones))])
		switch r.IntN(3) {
		case 1:
			t = t.Add(time.Duration(r.IntN(1e9)))
		case 2:
			t = t.Add(time.Duration(r.IntN(1000)) * time.Millisecond)
		}
		return t
	}
	some := func() bool { return r.IntN(2) == 0 }
	s := Summary{ID: str(), AccountID: str(), InboxID: str(), Status: Status(str()), Addressed: some(),
		Contact: Contact{ID: str(), Phone: str(), Email: str(), Handle: str(), Name: str(), OptedOut: some()},
		Channel: Channel(str()), LastActivityAt: tm(), UnreadCount: r.Int64N(1 << 40), Version: r.Int64() - r.Int64(),
		SLABreached: some()}
	if some() {
		a := str()
		s.AssigneeID = &a
	}
	switch r.IntN(3) {
	case 1:
		s.Tags = []string{}
	case 2:
		for range 1 + r.IntN(3) {
			s.Tags = append(s.Tags, str())
		}
	}
	if some() {
		s.LastMessage = &LastMessage{ID: str(), Seq: r.Int64N(1 << 30), Direction: Direction(str()), Kind: ItemKind(str()),
			Body: str() + str(), CreatedAt: tm()}
	}
	for _, p := range []**time.Time{&s.WaitingSince, &s.SnoozeUntil, &s.SLADueAt} {
		if some() {
			t := tm()
			*p = &t
		}
	}
	if some() {
		s.ActiveCall = &ActiveCall{CallID: str(), State: CallState(str())}
	}
	return s
}

func TestSummaryJSONMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 5000 {
		s := randomSummary(r)
		want, err := summaryJSONReference(&s)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.AppendJSON([]byte("prefix"))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != "prefix"+string(want) {
			t.Fatalf("%+v:\n got %s\nwant prefix%s", s, got, want)
		}
	}
}

// A time encoding/json refuses, AppendJSON refuses too.
func TestSummaryJSONRefusesWhatTimeRefuses(t *testing.T) {
	for _, y := range []int{-1, 10000} {
		bad := time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC)
		for _, s := range []Summary{{LastActivityAt: bad}, {SLADueAt: &bad}, {LastMessage: &LastMessage{CreatedAt: bad}}} {
			if _, err := summaryJSONReference(&s); err == nil {
				t.Fatalf("year %d: the reference encodes it", y)
			}
			if b, err := s.AppendJSON(nil); err == nil {
				t.Fatalf("year %d: encoded as %s, want an error", y, b)
			}
		}
	}
}

// randomItem sets every field, each optional one present or not.
func randomItem(r *rand.Rand) Item {
	strs := []string{"", "plain", `q"uote`, "<b>&amp;</b>", "tab\there", "\x00nul", "Zoë", "bad\xffutf8", "emoji 🎉", "call"}
	str := func() string { return strs[r.IntN(len(strs))] }
	tm := func() time.Time {
		return time.Unix(r.Int64N(4102444800), int64(r.IntN(1e9))).In(time.FixedZone("", 3600*(r.IntN(25)-12)))
	}
	it := Item{ID: str(), Seq: r.Int64N(1 << 40), Direction: Direction(str()), Kind: ItemKind(str()), Channel: Channel(str()),
		Body: str() + str(), CreatedAt: tm(), ExternalID: str(), ClientID: str(), AuthorID: str(), CallID: str(),
		State: CallState(str()), RecordingURL: str(), Status: DeliveryStatus(str()), ErrorCode: str(), ProviderMessageID: str()}
	if r.IntN(2) == 0 {
		it.DurationS = r.Int64N(7200) - 10
	}
	if r.IntN(2) == 0 {
		it.UpdatedAt = tm()
	}
	return it
}

// itemByTags is Item without its MarshalJSON: encoding/json's reference.
type itemByTags Item

func TestItemJSONMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	nulls := 0
	for range 5000 {
		it := randomItem(r)
		if r.IntN(4) == 0 {
			it.Direction, it.Kind = Inbound, KindMessage
		}
		ref, err := json.Marshal((*itemByTags)(&it))
		if err != nil {
			t.Fatal(err)
		}
		want := string(ref)
		if it.ExternalID == "" && it.Direction == Inbound && it.Kind == KindMessage {
			// The one member the tags cannot say: an inbound message's
			// external_id, null when none was sent, in its place.
			at, _ := json.Marshal(it.CreatedAt)
			created := `"created_at":` + string(at)
			want = strings.Replace(want, created, created+`,"external_id":null`, 1)
			nulls++
		}
		got, err := it.AppendJSON([]byte("prefix"))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != "prefix"+want {
			t.Fatalf("%+v:\n got %s\nwant prefix%s", it, got, want)
		}
		marshalled, err := json.Marshal(it)
		if err != nil || string(marshalled) != want {
			t.Fatalf("json.Marshal: %s, %v; want %s", marshalled, err, want)
		}
		var back Item
		if err := json.Unmarshal(marshalled, &back); err != nil {
			t.Fatalf("decoding %s: %v", marshalled, err)
		}
	}
	if nulls == 0 {
		t.Fatal("no inbound message without external_id was drawn")
	}
	bad := Item{CreatedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}
	if _, err := bad.AppendJSON(nil); err == nil {
		t.Fatal("a year encoding/json refuses was encoded")
	}
}

// BenchmarkItemJSON encodes a message as the conversation actor does once
// per message (AppendJSON), and through encoding/json's reflection.
func BenchmarkItemJSON(b *testing.B) {
	it := Item{ID: "msg_0123456789abcdef", Seq: 42, Direction: Inbound, Kind: KindMessage, Channel: "sms",
		Body: "a message body of a typical length", CreatedAt: time.Date(2026, 11, 30, 12, 0, 0, 123456789, time.UTC),
		ExternalID: "ext-0123456789"}
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 512)
		for b.Loop() {
			if _, err := it.AppendJSON(buf[:0]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("reflect", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(&it); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// randomEvent sets every field, each optional one present or not.
func randomEvent(r *rand.Rand) Event {
	strs := []string{"", "plain", `q"uote`, "<b>&amp;</b>", "\x00nul", "Zoë", "bad\xffutf8", "inbound_message", "rq_0123"}
	str := func() string { return strs[r.IntN(len(strs))] }
	some := func() bool { return r.IntN(2) == 0 }
	tm := func() time.Time {
		return time.Unix(r.Int64N(4102444800), int64(r.IntN(1e9))).In(time.FixedZone("", 3600*(r.IntN(25)-12)))
	}
	e := Event{Type: EventType(str()), Version: r.Int64() - r.Int64(), At: tm(), IdempotencyKey: str(),
		AccountID: str(), InboxID: str(), ActorID: str()}
	if some() {
		e.Contact = &Contact{ID: str(), Phone: str(), Email: str(), Handle: str(), Name: str(), OptedOut: some()}
	}
	if some() {
		it := randomItem(r)
		e.Item = &it
	}
	if some() {
		c := &Change{}
		if some() {
			st := Status(str())
			c.Status = &st
		}
		if some() {
			a := some()
			c.Addressed = &a
		}
		if some() {
			id := str()
			c.AssigneeID = &id
		}
		for _, tags := range []*[]string{&c.TagsAdd, &c.TagsRemove} {
			switch r.IntN(3) {
			case 1:
				*tags = []string{}
			case 2:
				*tags = []string{str(), str()}
			}
		}
		e.Change = c
	}
	if some() {
		tr := &Timers{SLABreached: some()}
		if some() {
			t := tm()
			tr.SnoozeUntil = &t
		}
		if some() {
			t := tm()
			tr.SLADueAt = &t
		}
		e.Timers = tr
	}
	if some() {
		p := some()
		e.AssignPending = &p
	}
	if some() {
		s := randomSummary(r)
		e.Summary = &s
	}
	return e
}

func TestEventJSONMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for range 5000 {
		e := randomEvent(r)
		want, err := json.Marshal(&e)
		if err != nil {
			t.Fatal(err)
		}
		got, err := e.AppendJSON([]byte("prefix"))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != "prefix"+string(want) {
			t.Fatalf("%+v:\n got %s\nwant prefix%s", e, got, want)
		}
	}
	bad := time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, e := range []Event{{At: bad}, {Timers: &Timers{SLADueAt: &bad}}, {Item: &Item{CreatedAt: bad}}, {Summary: &Summary{LastActivityAt: bad}}} {
		if _, err := json.Marshal(&e); err == nil {
			t.Fatal("the reference encodes a year it cannot write")
		}
		if b, err := e.AppendJSON(nil); err == nil {
			t.Fatalf("encoded as %s, want an error", b)
		}
	}
}

// BenchmarkEventJSON encodes an inbound message's event as the writer
// does for the journal (its item and summary travel separately), through
// AppendJSON and through encoding/json's reflection.
func BenchmarkEventJSON(b *testing.B) {
	at := time.Date(2026, 11, 30, 12, 0, 0, 123456789, time.UTC)
	e := Event{Type: EventInbound, Version: 42, At: at, IdempotencyKey: "rq_91154e7db9cd2781ef77b6cfeeb28c",
		AccountID: "acc_v6gsszfeog5nur6sawyqv63ave", InboxID: "ib_oi252hspndsmlo5al3ohtrdgwm",
		Contact: &Contact{ID: "ct_vnz5gb533flvnrk653vtdmmv", Phone: "+14155550123"}}
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 512)
		for b.Loop() {
			if _, err := e.AppendJSON(buf[:0]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("reflect", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(&e); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// The size hint holds a summary's JSON in one allocation unless a string
// needs escaping, and is not far above it.
func TestSummaryJSONSizeHintFits(t *testing.T) {
	plain := func(s string) bool {
		for i := 0; i < len(s); i++ {
			if c := s[i]; c < 0x20 || c >= 0x7f || strings.IndexByte(`"\<>&`, c) >= 0 {
				return false
			}
		}
		return true
	}
	r := rand.New(rand.NewPCG(3, 4))
	fits := 0
	for range 5000 {
		s := randomSummary(r)
		strs := []string{s.ID, s.AccountID, s.InboxID, string(s.Status), string(s.Channel),
			s.Contact.ID, s.Contact.Phone, s.Contact.Email, s.Contact.Handle, s.Contact.Name}
		strs = append(strs, s.Tags...)
		if s.AssigneeID != nil {
			strs = append(strs, *s.AssigneeID)
		}
		if m := s.LastMessage; m != nil {
			strs = append(strs, m.ID, string(m.Direction), string(m.Kind), m.Body)
		}
		if c := s.ActiveCall; c != nil {
			strs = append(strs, c.CallID, string(c.State))
		}
		escapes := false
		for _, v := range strs {
			escapes = escapes || !plain(v)
		}
		b, err := s.AppendJSON(nil)
		if err != nil {
			t.Fatal(err)
		}
		hint := s.JSONSizeHint()
		switch {
		case len(b) > hint && !escapes:
			t.Fatalf("hint %d for a summary of %d bytes:\n%s", hint, len(b), b)
		case hint-len(b) > 200:
			t.Fatalf("hint %d, %d bytes over the summary's %d:\n%s", hint, hint-len(b), len(b), b)
		case len(b) <= hint:
			fits++
		}
	}
	if fits < 1000 {
		t.Fatalf("only %d of 5000 summaries fit their hint", fits)
	}
}
