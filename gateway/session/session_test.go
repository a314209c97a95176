package session

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/switchboard-dev/switchboard/actors"
	"github.com/switchboard-dev/switchboard/domain/conversation"
	"github.com/switchboard-dev/switchboard/domain/inbox"
	"github.com/switchboard-dev/switchboard/gateway/outbox"
	"github.com/switchboard-dev/switchboard/wire"
)

var (
	self     = actor.NewPID("nodeA", "session-1")
	inboxPID = actor.NewPID("nodeB", "inbox/in1")
	inbox2   = actor.NewPID("nodeC", "inbox/in1")
	convPID  = actor.NewPID("nodeB", "conversation/c1")
)

// describe renders effects as short lines, so a table can say what a step
// must do in order.
func describe(effects []Effect) []string {
	var out []string
	for _, e := range effects {
		switch e := e.(type) {
		case Push:
			var head struct {
				Type   string `json:"type"`
				Reason string `json:"reason"`
				Error  struct {
					Code string `json:"code"`
				} `json:"error"`
			}
			_ = json.Unmarshal(e.Frame.Data, &head)
			s := fmt.Sprintf("push %s %s", e.Frame.Kind, head.Type)
			switch {
			case head.Reason != "":
				s += " " + head.Reason
			case head.Error.Code != "":
				s += " " + head.Error.Code
			case e.Frame.Kind == wire.KindUpdate:
				s += fmt.Sprintf(" %s v%d", e.Frame.Conv, e.Frame.Version)
				if e.Frame.Replay {
					s += " replay"
				}
			}
			out = append(out, s)
		case Forget:
			out = append(out, "forget "+e.Inbox)
		case Subscribe:
			out = append(out, fmt.Sprintf("subscribe %s #%d resume=%t", e.InboxID, e.ID, e.Resume))
		case Unsubscribe:
			out = append(out, fmt.Sprintf("unsubscribe %s #%d at %s", e.Inbox, e.ID, e.PID.Address))
		case Watch:
			w := fmt.Sprintf("watch %s #%d", e.Conv, e.ID)
			if e.Summaries {
				w += " summaries"
			}
			out = append(out, w)
		case Unwatch:
			out = append(out, fmt.Sprintf("unwatch %s at %s", e.Conv, e.PID.Address))
		case Monitor:
			out = append(out, "monitor "+e.PID.Address)
		case Unmonitor:
			out = append(out, "unmonitor "+e.PID.Address)
		case Typing:
			to := "by identity"
			if e.PID != nil {
				to = "at " + e.PID.Address
			}
			out = append(out, fmt.Sprintf("typing %s %s %s", e.Conv, e.AgentID, to))
		case Retry:
			target := e.Inbox + e.Conv
			out = append(out, fmt.Sprintf("retry %s #%d in %s", target, e.ID, e.After))
		case Done:
			out = append(out, "done")
		case ResyncIfStale:
			out = append(out, "resync if stale "+e.Inbox)
		default:
			out = append(out, fmt.Sprintf("%T", e))
		}
	}
	return out
}

func subscribed(id uint64, pid *actor.PID, seq int64, updates ...actors.InboxUpdate) actors.InboxSubscribed {
	return actors.InboxSubscribed{SubscriptionID: id, InboxID: "in1", Inbox: pid, Epoch: "e1", Seq: seq,
		Resumed: len(updates) > 0, Updates: updates, Conversations: json.RawMessage(`[]`), Counts: json.RawMessage(`{}`)}
}

func update(id uint64, prev, seq int64, conv string, version int64) actors.InboxUpdate {
	return actors.InboxUpdate{SubscriptionID: id, InboxID: "in1", Epoch: "e1", Seq: seq, PrevSeq: prev, ConversationID: conv,
		Version: version, Frame: wire.Update("in1", "e1", seq, json.RawMessage(`{}`), json.RawMessage(`{}`)).Data}
}

func clientSubscribe(resume bool) ClientSubscribe {
	m := ClientSubscribe{Inbox: "in1", AccountID: "acc", Ref: json.RawMessage(`"s1"`), Done: make(chan struct{})}
	if resume {
		m.Resume, m.Epoch, m.Seq = true, "e1", 3
	}
	return m
}

// step is one event and the effects it must have.
type step struct {
	do   func(s *Session) []Effect
	want []string
}

func run(t *testing.T, s *Session, steps []step) {
	t.Helper()
	for i, st := range steps {
		got := describe(st.do(s))
		if !slices.Equal(got, st.want) {
			t.Fatalf("step %d:\n got %q\nwant %q", i, got, st.want)
		}
	}
}

func TestSubscriptions(t *testing.T) {
	unavailable := wire.Errorf(wire.CodeUnavailable, "inbox moved")
	for _, c := range []struct {
		name      string
		max       int
		maxReplay int
		steps     []step
	}{
		{name: "fresh subscribe: subscribed, snapshot, then updates in order", steps: []step{
			{func(s *Session) []Effect { return s.Subscribe(clientSubscribe(false)) }, []string{"subscribe in1 #1 resume=false"}},
			{func(s *Session) []Effect { return s.Subscribed(subscribed(1, inboxPID, 5)) },
				[]string{"monitor nodeB", "push reply subscribed", "push snapshot snapshot", "done"}},
			{func(s *Session) []Effect { return s.Update(update(1, 5, 6, "c1", 2)) }, []string{"push update update c1 v2"}},
			{func(s *Session) []Effect { return s.Update(update(1, 6, 7, "c2", 9)) }, []string{"push update update c2 v9"}},
		}},
		{name: "resume: subscribed, the missed updates, a check of the queue", steps: []step{
			{func(s *Session) []Effect { return s.Subscribe(clientSubscribe(true)) }, []string{"subscribe in1 #1 resume=true"}},
			{func(s *Session) []Effect {
				return s.Subscribed(subscribed(1, inboxPID, 5, update(1, 3, 4, "c1", 2), update(1, 4, 5, "c2", 3)))
			}, []string{"monitor nodeB", "push reply subscribed", "push update update c1 v2 replay", "push update update c2 v3 replay",
				"resync if stale in1", "done"}},
			// The queue overflowed during the replay: a fresh snapshot.
			{func(s *Session) []Effect { return s.Resynced("in1") }, []string{"subscribe in1 #2 resume=false"}},
		}},
		{name: "a replay longer than the queue takes whole: a snapshot instead", maxReplay: 2, steps: []step{
			{func(s *Session) []Effect { return s.Subscribe(clientSubscribe(true)) }, []string{"subscribe in1 #1 resume=true"}},
			{func(s *Session) []Effect {
				return s.Subscribed(subscribed(1, inboxPID, 6, update(1, 3, 4, "c1", 2), update(1, 4, 5, "c2", 3), update(1, 5, 6, "c3", 4)))
			}, []string{"subscribe in1 #2 resume=false"}},
			{func(s *Session) []Effect { return s.Subscribed(subscribed(2, inboxPID, 6)) },
				[]string{"monitor nodeB", "push reply subscribed", "push resync resync resume_unavailable", "push snapshot snapshot", "done"}},
		}},
		{name: "a resume the inbox cannot serve: subscribed, resync, snapshot", steps: []step{
			{func(s *Session) []Effect { return s.Subscribe(clientSubscribe(true)) }, []string{"subscribe in1 #1 resume=true"}},
			{func(s *Session) []Effect { return s.Subscribed(subscribed(1, inboxPID, 9000)) },
				[]string{"monitor nodeB", "push reply subscribed", "push resync resync resume_unavailable", "push snapshot snapshot", "done"}},
		}},
		{name: "a resume of an unknown epoch: subscribed, resync, snapshot", steps: []step{
			{func(s *Session) []Effect {
				m := clientSubscribe(true)
				m.Epoch = "e0"
				return s.Subscribe(m)
			}, []string{"subscribe in1 #1 resume=true"}},
			{func(s *Session) []Effect { return s.Subscribed(subscribed(1, inboxPID, 5)) },
				[]string{"monitor nodeB", "push reply subscribed", "push resync resync epoch_changed", "push snapshot snapshot", "done"}},
			// Later answers (internal re-subscriptions) carry no client's resume.
			{func(s *Session) []Effect { return s.Update(update(1, 6, 7, "c1", 2)) }, []string{"subscribe in1 #2 resume=true"}},
			{func(s *Session) []Effect { return s.Subscribed(subscribed(2, inboxPID, 8, update(2, 5, 7, "c1", 2))) },
				[]string{"push update update c1 v2 replay", "resync if stale in1"}},
		}},
		{name: "one subscription too many is refused", max: 1, steps: []step{
			{func(s *Session) []Effect { return s.Subscribe(clientSubscribe(false)) }, []string{"subscribe in1 #1 resume=false"}},
			{func(s *Session) []Effect {
				m := clientSubscribe(false)
				m.Inbox = "in2"
				return s.Subscribe(m)
			}, []string{"push reply error rate_limited", "done"}},
			// Subscribing to the same inbox again replaces, and releases the
			// frame still waiting.
			{func(s *Session) []Effect { return s.Subscribe(clientSubscribe(false)) }, []string{"done", "subscribe in1 #2 resume=false"}},
			{func(s *Session) []Effect { return s.Subscribed(subscribed(1, inboxPID, 5)) }, []string{"unsubscribe in1 #1 at nodeB"}},
		}},
		{name: "a lost update resumes from the last seq held", steps: []step{
			{func(s *Session) []Effect { return s.Subscribe(clientSubscribe(false)) }, nil},
			{func(s *Session) []Effect { return s.Subscribed(subscribed(1, inboxPID, 5)) }, nil},
			{func(s *Session) []Effect { return s.Update(update(1, 6, 7, "c1", 2)) }, []string{"subscribe in1 #2 resume=true"}},
			// Updates of the replaced registration are ignored.
			{func(s *Session) []Effect { return s.Update(update(1, 7, 8, "c1", 3)) }, none},
			{func(s *Session) []Effect { return s.Subscribed(subscribed(2, inboxPID, 8, update(2, 5, 7, "c1", 2))) },
				[]string{"push update update c1 v2 replay", "resync if stale in1"}},
			{func(s *Session) []Effect { return s.Update(update(2, 8, 9, "c1", 3)) }, []string{"push update update c1 v3"}},
		}},
		{name: "a lost update beyond the ring: resync gap, then a snapshot", steps: []step{
			{func(s *Session) []Effect { return s.Subscribe(clientSubscribe(false)) }, nil},
			{func(s *Session) []Effect { return s.Subscribed(subscribed(1, inboxPID, 5)) }, nil},
			{func(s *Session) []Effect { return s.Update(update(1, 6, 7, "c1", 2)) }, []string{"subscribe in1 #2 resume=true"}},
			{func(s *Session) []Effect { return s.Subscribed(subscribed(2, inboxPID, 9000)) },
				[]string{"push resync resync gap", "push snapshot snapshot"}},
		}},
		{name: "the inbox activation stops: re-register, resync epoch_changed", steps: []step{
			{func(s *Session) []Effect { return s.Subscribe(clientSubscribe(false)) }, nil},
			{func(s *Session) []Effect { return s.Subscribed(subscribed(1, inboxPID, 5)) }, nil},
			{func(s *Session) []Effect { return s.Terminated(convPID) }, none},
			{func(s *Session) []Effect { return s.Terminated(inboxPID) }, []string{"subscribe in1 #2 resume=true"}},
			{func(s *Session) []Effect { return s.Subscribed(subscribed(2, inbox2, 1)) },
				[]string{"monitor nodeC", "push resync resync epoch_changed", "push snapshot snapshot"}},
		}},
		{name: "a refused subscribe is the client's error; nothing is kept", steps: []step{
			{func(s *Session) []Effect { return s.Subscribe(clientSubscribe(false)) }, nil},
			{func(s *Session) []Effect {
				return s.Fail(Failed{Inbox: "in1", ID: 1, Err: wire.Errorf(wire.CodeNotFound, "no")})
			},
				[]string{"push reply error not_found", "done"}},
			{func(s *Session) []Effect { return s.Subscribed(subscribed(1, inboxPID, 5)) }, []string{"unsubscribe in1 #1 at nodeB"}},
			{func(s *Session) []Effect { return s.Unsubscribe("in1") }, none},
		}},
		{name: "a refused subscribe replacing a live one: the live one stands, resumed", steps: []step{
			{func(s *Session) []Effect { return s.Subscribe(clientSubscribe(false)) }, nil},
			{func(s *Session) []Effect { return s.Subscribed(subscribed(1, inboxPID, 5)) }, nil},
			{func(s *Session) []Effect { return s.Update(update(1, 5, 6, "c1", 2)) }, []string{"push update update c1 v2"}},
			{func(s *Session) []Effect { return s.Subscribe(clientSubscribe(false)) }, []string{"subscribe in1 #2 resume=false"}},
			{func(s *Session) []Effect { return s.Update(update(1, 6, 7, "c1", 3)) }, none}, // while the new one is asked for
			{func(s *Session) []Effect { return s.Fail(Failed{Inbox: "in1", ID: 2, Err: unavailable}) },
				[]string{"push reply error unavailable", "done", "subscribe in1 #3 resume=true"}},
			// The resume brings what was missed meanwhile, and updates go on.
			{func(s *Session) []Effect { return s.Subscribed(subscribed(3, inboxPID, 7, update(3, 6, 7, "c1", 3))) },
				[]string{"push update update c1 v3 replay", "resync if stale in1"}},
			{func(s *Session) []Effect { return s.Update(update(3, 7, 8, "c2", 1)) }, []string{"push update update c2 v1"}},
		}},
		{name: "a refused re-subscription retries with backoff", steps: []step{
			{func(s *Session) []Effect { return s.Subscribe(clientSubscribe(false)) }, nil},
			{func(s *Session) []Effect { return s.Subscribed(subscribed(1, inboxPID, 5)) }, nil},
			{func(s *Session) []Effect { return s.Terminated(inboxPID) }, []string{"subscribe in1 #2 resume=true"}},
			{func(s *Session) []Effect { return s.Fail(Failed{Inbox: "in1", ID: 2, Err: unavailable}) }, []string{"retry in1 #2 in 100ms"}},
			{func(s *Session) []Effect { return s.Fail(Failed{Inbox: "in1", ID: 1, Err: unavailable}) }, none}, // stale
			{func(s *Session) []Effect { return s.RetrySubscribe("in1", 2) }, []string{"subscribe in1 #3 resume=true"}},
			{func(s *Session) []Effect { return s.Fail(Failed{Inbox: "in1", ID: 3, Err: unavailable}) }, []string{"retry in1 #3 in 200ms"}},
			{func(s *Session) []Effect { return s.RetrySubscribe("in1", 2) }, none}, // an old timer
			{func(s *Session) []Effect { return s.RetrySubscribe("in1", 3) }, []string{"subscribe in1 #4 resume=true"}},
			{func(s *Session) []Effect { return s.Subscribed(subscribed(4, inbox2, 6, update(4, 5, 6, "c1", 2))) },
				[]string{"monitor nodeC", "push update update c1 v2 replay", "resync if stale in1"}},
		}},
		{name: "unsubscribe forgets queued updates and the registration", steps: []step{
			{func(s *Session) []Effect { return s.Subscribe(clientSubscribe(false)) }, nil},
			{func(s *Session) []Effect { return s.Subscribed(subscribed(1, inboxPID, 5)) }, nil},
			{func(s *Session) []Effect { return s.Unsubscribe("in1") },
				[]string{"forget in1", "unsubscribe in1 #1 at nodeB", "unmonitor nodeB"}},
			{func(s *Session) []Effect { return s.Update(update(1, 5, 6, "c1", 2)) }, none},
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			max := c.max
			if max == 0 {
				max = 50
			}
			run(t, New(self, "ag1", max).WithMaxReplay(c.maxReplay), scene(c.steps))
		})
	}
}

// none is a step that must have no effect; a nil want is a step that only
// sets the scene (scene runs it without checking what it does).
var none = []string{}

// scene keeps the table short: steps without expectations are run for
// their effect on the session only.
func scene(steps []step) []step {
	out := make([]step, len(steps))
	for i, st := range steps {
		out[i] = st
		if st.want == nil {
			do := st.do
			out[i] = step{do: func(s *Session) []Effect { do(s); return nil }}
		}
	}
	return out
}

func TestWatches(t *testing.T) {
	watch := func(ref string) ClientWatch {
		return ClientWatch{Conv: "c1", AccountID: "acc", Ref: json.RawMessage(ref), Done: make(chan struct{})}
	}
	watchedAt := func(v int64) actors.ConversationWatched {
		return actors.ConversationWatched{ConversationID: "c1", Conversation: convPID, Version: v}
	}
	watched := watchedAt(4)
	typing := actors.ConversationEvent{ConversationID: "c1", Frame: wire.Typing("c1", "ag2")}
	item := actors.ConversationEvent{ConversationID: "c1", Frame: wire.Item("c1", json.RawMessage(`{}`))}
	presence := actors.ConversationEvent{ConversationID: "c1", Frame: wire.Presence("c1", []string{"ag1"}), Presence: true}
	s := New(self, "ag1", 50)
	run(t, s, []step{
		{func(s *Session) []Effect { return s.Typing("c1", "acc") }, []string{"typing c1 ag1 by identity"}},
		{func(s *Session) []Effect { return s.Watch(watch("1")) }, []string{"watch c1 #1"}},
		{func(s *Session) []Effect { return s.Event(typing) }, none}, // not registered yet
		{func(s *Session) []Effect { return s.Watched(watched) }, []string{"monitor nodeB", "push reply watching", "done"}},
		{func(s *Session) []Effect { return s.Event(presence) }, []string{"push reply presence"}},
		{func(s *Session) []Effect { return s.Event(typing) }, []string{"push typing typing"}},
		{func(s *Session) []Effect { return s.Event(item) }, []string{"push reply item"}},
		{func(s *Session) []Effect { return s.Typing("c1", "acc") }, []string{"typing c1 ag1 at nodeB"}},
		// Watching again asks the conversation for its version now,
		// keeping the registration: items still flow meanwhile, and the
		// answer (then the presence the conversation sends after it)
		// confirms.
		{func(s *Session) []Effect { return s.Watch(watch("2")) }, []string{"watch c1 #2"}},
		{func(s *Session) []Effect { return s.Event(item) }, []string{"push reply item"}},
		{func(s *Session) []Effect { return s.Watched(watchedAt(7)) }, []string{"push reply watching", "done"}},
		{func(s *Session) []Effect { return s.Event(presence) }, []string{"push reply presence"}},
		// The same answer resent by the cluster: nobody waits for it.
		{func(s *Session) []Effect { return s.Watched(watchedAt(7)) }, none},
		// A repeated watch whose request fails: the client hears of it,
		// the registration stands.
		{func(s *Session) []Effect { return s.Watch(watch("3")) }, []string{"watch c1 #3"}},
		{func(s *Session) []Effect { return s.Fail(Failed{Conv: "c1", ID: 3, Err: errors.New("timeout")}) }, []string{"push reply error unavailable", "done"}},
		{func(s *Session) []Effect { return s.Event(item) }, []string{"push reply item"}},
		// The activation stops: re-register; a refusal retries.
		{func(s *Session) []Effect { return s.Terminated(convPID) }, []string{"watch c1 #4"}},
		{func(s *Session) []Effect { return s.Fail(Failed{Conv: "c1", ID: 4, Err: errors.New("timeout")}) }, []string{"retry c1 #4 in 1s"}},
		{func(s *Session) []Effect { return s.RetryWatch("c1") }, []string{"watch c1 #5"}},
		{func(s *Session) []Effect { return s.Watched(watched) }, []string{"monitor nodeB"}},
		{func(s *Session) []Effect { return s.Stop() }, []string{"unwatch c1 at nodeB"}},
	})
	s = New(self, "ag1", 50)
	run(t, s, []step{
		{func(s *Session) []Effect { return s.Watch(watch("1")) }, []string{"watch c1 #1"}},
		{func(s *Session) []Effect {
			return s.Fail(Failed{Conv: "c1", ID: 1, Err: wire.Errorf(wire.CodeNotFound, "no")})
		},
			[]string{"push reply error not_found", "done"}},
		// A late answer for a watch nobody holds is withdrawn.
		{func(s *Session) []Effect { return s.Watched(watched) }, []string{"unwatch c1 at nodeB"}},
		{func(s *Session) []Effect { return s.Unwatch("c1") }, none},
	})
}

// A Done effect is emitted exactly once per client frame, after its answer:
// the reader of the next frame waits on it.
func TestDoneFollowsTheAnswer(t *testing.T) {
	s := New(self, "", 50)
	m := clientSubscribe(false)
	s.Subscribe(m)
	effects := s.Subscribed(subscribed(1, inboxPID, 1))
	last, ok := effects[len(effects)-1].(Done)
	if !ok || last.C != m.Done {
		t.Fatalf("effects %q do not end with the frame's Done", describe(effects))
	}
	if got := describe(s.Stop()); !slices.Equal(got, []string{"unsubscribe in1 #1 at nodeB"}) {
		t.Fatalf("stop: %q", got)
	}
}

// The subscription's filter travels to the inbox as typed values.
func TestSubscribeCarriesTheQuery(t *testing.T) {
	s := New(self, "ag1", 50)
	m := clientSubscribe(false)
	m.Query = inbox.Query{Statuses: []conversation.Status{conversation.StatusOpen}, Limit: 10}
	sub := s.Subscribe(m)[0].(Subscribe)
	if sub.AgentID != "ag1" || sub.AccountID != "acc" || sub.Subscriber != self || sub.Query.Limit != 10 ||
		len(sub.Query.Statuses) != 1 {
		t.Fatalf("subscription %+v", sub.Subscription)
	}
}

// stalled is a connection whose peer stopped reading: the queue's first
// batch blocks in WriteBatch until the test ends.
type stalled struct {
	once    sync.Once
	started chan struct{}
	release chan struct{}
}

func (w *stalled) WriteBatch([]outbox.Frame) error {
	w.once.Do(func() { close(w.started) })
	<-w.release
	return nil
}

// TestTypingBehindFullQueueIsDropped: a typing frame reaching a connection
// whose queue is full is dropped; it is not a reason to close the
// connection. (Typing frames used to be encoded from a map, so their bytes
// began {"agent_id" and a byte-prefix test never recognised them as typing:
// the queue treated them as frames it may not drop and failed.)
func TestTypingBehindFullQueueIsDropped(t *testing.T) {
	w := &stalled{started: make(chan struct{}), release: make(chan struct{})}
	defer close(w.release)
	q := outbox.New(outbox.Config{MaxFrames: 4}, w, outbox.Hooks{}, func(string) []byte { return nil })
	s := New(self, "ag1", 50)
	s.Watch(ClientWatch{Conv: "c1", AccountID: "acc", Done: make(chan struct{})})
	apply := func(effects []Effect) bool {
		ok := true
		for _, e := range effects {
			if p, isPush := e.(Push); isPush {
				ok = q.Push(p.Frame) && ok
			}
		}
		return ok
	}
	apply(s.Watched(actors.ConversationWatched{ConversationID: "c1", Conversation: convPID, Version: 1}))
	<-w.started // the watching frame is being written, and never will be
	item := actors.ConversationEvent{ConversationID: "c1", Frame: wire.Item("c1", json.RawMessage(`{"id":"m"}`))}
	for range 4 {
		if !apply(s.Event(item)) {
			t.Fatal("the queue refused an item before it was full")
		}
	}
	for _, agent := range []string{"ag2", "ag3"} {
		typing := actors.ConversationEvent{ConversationID: "c1", Frame: wire.Typing("c1", agent)}
		if !apply(s.Event(typing)) || q.Err() != nil {
			t.Fatalf("typing behind a full queue: the queue failed (%v); the connection would close", q.Err())
		}
	}
	if st := q.Stats(); st.Dropped != 2 || st.Len != 4 {
		t.Fatalf("stats %+v: want both typing frames dropped and the items kept", st)
	}
	// The queue really was full: an item, which may not be dropped, fails.
	if apply(s.Event(item)) || !errors.Is(q.Err(), outbox.ErrOverflow) {
		t.Fatalf("an item beyond a full queue: err %v", q.Err())
	}
	if !strings.HasPrefix(string(wire.Typing("c1", "ag2").Data), `{"type":"typing"`) {
		t.Fatal("typing frames start with their type")
	}
}

// A watch that asks for summaries keeps asking on every registration (a
// retry after its activation moved included); watching again says anew.
func TestWatchCarriesSummaries(t *testing.T) {
	watch := func(summaries bool) ClientWatch {
		return ClientWatch{Conv: "c1", AccountID: "acc", Ref: json.RawMessage(`"w"`), Done: make(chan struct{}), Summaries: summaries}
	}
	run(t, New(self, "ag1", 50), []step{
		{func(s *Session) []Effect { return s.Watch(watch(true)) }, []string{"watch c1 #1 summaries"}},
		{func(s *Session) []Effect {
			return s.Watched(actors.ConversationWatched{ConversationID: "c1", Conversation: convPID, Version: 2})
		}, []string{"monitor nodeB", "push reply watching", "done"}},
		{func(s *Session) []Effect { return s.Terminated(convPID) }, []string{"watch c1 #2 summaries"}},
		{func(s *Session) []Effect { return s.Fail(Failed{Conv: "c1", ID: 2, Err: errors.New("timeout")}) }, []string{"retry c1 #2 in 1s"}},
		{func(s *Session) []Effect { return s.RetryWatch("c1") }, []string{"watch c1 #3 summaries"}},
		{func(s *Session) []Effect {
			return s.Watched(actors.ConversationWatched{ConversationID: "c1", Conversation: convPID, Version: 2})
		}, []string{"monitor nodeB"}},
		{func(s *Session) []Effect { return s.Watch(watch(false)) }, []string{"watch c1 #4"}},
	})
}
