package search

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestMarkSnippet(t *testing.T) {
	cases := map[string]string{
		"plain":                                   "plain",
		MarkStart + "hit" + MarkEnd + " & <b>":    "<mark>hit</mark> &amp; &lt;b&gt;",
		"a " + MarkStart + "b" + MarkEnd + " c":   "a <mark>b</mark> c",
		MarkEnd + "stray end":                     "stray end",
		MarkStart + MarkStart + "x" + MarkEnd:     "<mark>x</mark>",
		MarkStart + "unclosed":                    "<mark>unclosed</mark>",
		`"quotes" 'too'`:                          "&#34;quotes&#34; &#39;too&#39;",
		MarkStart + "é" + MarkEnd + MarkEnd + "ü": "<mark>é</mark>ü",
	}
	for in, want := range cases {
		if got := MarkSnippet(in); got != want {
			t.Errorf("MarkSnippet(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestQueryLimitAndEmpty(t *testing.T) {
	for in, want := range map[int]int{0: DefaultLimit, -3: DefaultLimit, 1: 1, 100: 100, 101: MaxLimit} {
		if got := (Query{Limit: in}).EffectiveLimit(); got != want {
			t.Errorf("limit %d: %d", in, got)
		}
	}
	full := Query{AccountID: "a", InboxIDs: []string{"i"}, Text: "x"}
	if full.Empty() {
		t.Error("full query empty")
	}
	for _, q := range []Query{{InboxIDs: []string{"i"}, Text: "x"}, {AccountID: "a", Text: "x"}, {AccountID: "a", InboxIDs: []string{"i"}, Text: " \t"}} {
		if !q.Empty() {
			t.Errorf("%+v should match nothing", q)
		}
	}
}

func TestHitJSON(t *testing.T) {
	b, err := json.Marshal(Result{Hits: []Hit{{ConversationID: "c", InboxID: "i", MessageID: "m", Seq: 3, Body: "b", Snippet: "s",
		CreatedAt: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}}, Found: 1})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"hits":[{"conversation_id":"c","inbox_id":"i","message_id":"m","seq":3,"body":"b","snippet":"s","created_at":"2025-01-02T03:04:05Z"}],"found":1}`
	if string(b) != want {
		t.Fatalf("got %s", b)
	}
	if !strings.Contains(DocError{ID: "x", Reason: "bad"}.Error(), "x") {
		t.Fatal("DocError")
	}
}
