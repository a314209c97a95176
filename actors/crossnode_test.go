package actors

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/switchboard-dev/switchboard/actors/actorpb"
	"github.com/switchboard-dev/switchboard/domain/conversation"
	"github.com/switchboard-dev/switchboard/domain/inbox"
	"github.com/switchboard-dev/switchboard/internal/poll"
	"github.com/switchboard-dev/switchboard/wire"
)

// seenTypes records every actorpb message type that crossed between the
// nodes, nested ones included.
type seenTypes map[protoreflect.FullName]bool

func (s seenTypes) walk(m protoreflect.Message) {
	s[m.Descriptor().FullName()] = true
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Message() == nil {
			return true
		}
		switch {
		case fd.IsList():
			for i := 0; i < v.List().Len(); i++ {
				s.walk(v.List().Get(i).Message())
			}
		case fd.IsMap():
		default:
			s.walk(v.Message())
		}
		return true
	})
}

// fill sets every field of m to a non-zero value (the first member of each
// oneof), recursively, so a round trip shows that nothing is lost.
func fill(m protoreflect.Message, depth int) {
	fields := m.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if od := fd.ContainingOneof(); od != nil && !od.IsSynthetic() && od.Fields().Get(0) != fd {
			continue
		}
		if fd.Message() != nil {
			if depth > 3 {
				continue
			}
			if fd.IsList() {
				l := m.Mutable(fd).List()
				e := l.NewElement()
				fill(e.Message(), depth+1)
				l.Append(e)
			} else if !fd.IsMap() {
				fill(m.Mutable(fd).Message(), depth+1)
			}
			continue
		}
		var v protoreflect.Value
		switch fd.Kind() {
		case protoreflect.StringKind:
			v = protoreflect.ValueOfString("s-" + string(fd.Name()))
		case protoreflect.BytesKind:
			v = protoreflect.ValueOfBytes([]byte(`{"` + string(fd.Name()) + `":1}`))
		case protoreflect.BoolKind:
			v = protoreflect.ValueOfBool(true)
		case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
			v = protoreflect.ValueOfInt32(int32(7 + i))
		case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
			v = protoreflect.ValueOfInt64(int64(1<<40 + i))
		case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
			v = protoreflect.ValueOfUint32(uint32(9 + i))
		case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
			v = protoreflect.ValueOfUint64(uint64(1<<41 + i))
		case protoreflect.DoubleKind:
			v = protoreflect.ValueOfFloat64(1.5)
		case protoreflect.FloatKind:
			v = protoreflect.ValueOfFloat32(2.5)
		case protoreflect.EnumKind:
			vals := fd.Enum().Values()
			v = protoreflect.ValueOfEnum(vals.Get(vals.Len() - 1).Number())
		default:
			continue
		}
		if fd.IsList() {
			m.Mutable(fd).List().Append(v)
		} else {
			m.Set(fd, v)
		}
	}
}

// TestCrossNodeEveryMessage runs two nodes in one process (one shared test
// agent, one cluster) and sends every actor message type from node A to
// actors owned by node B, checking each reply. Plain Go structs would be
// dropped by remoting (docs/architecture.md); these arrive and answer correctly.
func TestCrossNodeEveryMessage(t *testing.T) {
	nodes := startCluster(t, 2)
	a, b := nodes[0], nodes[1]
	if a.node.Address() == b.node.Address() {
		t.Fatal("both nodes on one address")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	owner := func(id, kind string) string { return a.owner(kind, id) }
	// An inbox owned by B, and one owned by A.
	var tnB, tnA tenantIDs
	for i := 0; tnB.inbox == "" || tnA.inbox == ""; i++ {
		if i > 64 {
			t.Fatal("could not place inboxes on both nodes")
		}
		tn := newTenantIDs(t, a.store, fmt.Sprintf("XNode%d", i))
		switch owner(tn.inbox, KindInbox) {
		case b.node.Address():
			if tnB.inbox == "" {
				tnB = tn
			}
		case a.node.Address():
			if tnA.inbox == "" {
				tnA = tn
			}
		}
	}
	// Conversations owned by B, one per inbox.
	phoneOnB := func(tn tenantIDs, from int) string {
		for i := from; i < from+64; i++ {
			phone := fmt.Sprintf("+1415555%04d", i)
			if owner(convID(tn.inbox, phone), KindConversation) == b.node.Address() {
				return phone
			}
		}
		t.Fatal("no conversation id owned by B")
		return ""
	}
	phone := phoneOnB(tnB, 2000)
	id := convID(tnB.inbox, phone)
	missing := convID(tnB.inbox, phoneOnB(tnB, 3000))

	seen := seenTypes{}
	ask := func(kind, identity string, msg proto.Message) proto.Message {
		t.Helper()
		seen.walk(msg.ProtoReflect())
		pid := a.node.Cluster.Get(identity, kind)
		if pid == nil || pid.Address != b.node.Address() {
			t.Fatalf("%s/%s is at %v, want node B %s", kind, identity, pid, b.node.Address())
		}
		res, err := a.node.Request(ctx, kind, identity, msg)
		if err != nil {
			t.Fatalf("%T to %s/%s: %v", msg, kind, identity, err)
		}
		reply, ok := res.(proto.Message)
		if !ok {
			t.Fatalf("%T answered %T", msg, res)
		}
		seen.walk(reply.ProtoReflect())
		return reply
	}
	conv := func(msg *actorpb.ConversationCommand) *actorpb.ConversationReply {
		t.Helper()
		msg.ConversationId, msg.AccountId, msg.InboxId = id, tnB.account, tnB.inbox
		if msg.IdempotencyKey == "" {
			msg.IdempotencyKey = "xk_" + randomID()
		}
		return ask(KindConversation, id, msg).(*actorpb.ConversationReply)
	}
	ok := func(what string, r *actorpb.ConversationReply) (conversation.Summary, conversation.Item) {
		t.Helper()
		if r.Error != nil {
			t.Fatalf("%s: %v", what, r.Error)
		}
		var it conversation.Item
		if len(r.ItemJson) > 0 {
			it = decodeItem(t, r.ItemJson)
		}
		return decodeSummary(t, r.SummaryJson), it
	}
	contact := &actorpb.Contact{Phone: phone, Name: "Ada"}

	// Every ConversationCommand variant.
	s, it := ok("inbound", conv(&actorpb.ConversationCommand{Command: &actorpb.ConversationCommand_Inbound{
		Inbound: &actorpb.InboundMessage{Contact: contact, Body: "hello", Channel: "sms", ExternalId: "ext-1"}}}))
	if s.Version != 1 || s.ID != id || s.Contact.Name != "Ada" || it.Seq != 1 || it.Body != "hello" || it.ExternalID != "ext-1" || it.Direction != conversation.Inbound {
		t.Fatalf("inbound: %+v %+v", s, it)
	}
	first := it.ID
	dup := conv(&actorpb.ConversationCommand{Command: &actorpb.ConversationCommand_Inbound{
		Inbound: &actorpb.InboundMessage{Contact: contact, Body: "hello again", ExternalId: "ext-1"}}})
	if s, it := ok("duplicate inbound", dup); !dup.Duplicate || it.ID != first || s.Version != 1 {
		t.Fatalf("duplicate external_id: dup %v item %+v version %d", dup.Duplicate, it, s.Version)
	}
	s, it = ok("call ringing", conv(&actorpb.ConversationCommand{Command: &actorpb.ConversationCommand_Call{
		Call: &actorpb.CallEvent{Contact: contact, CallId: "call-1", State: "ringing"}}}))
	if s.Version != 2 || it.Kind != conversation.KindCall || it.Seq != 2 || s.ActiveCall == nil || s.ActiveCall.State != conversation.CallRinging {
		t.Fatalf("call ringing: %+v %+v", s, it)
	}
	s, it = ok("call completed", conv(&actorpb.ConversationCommand{Command: &actorpb.ConversationCommand_Call{
		Call: &actorpb.CallEvent{Contact: contact, CallId: "call-1", State: "completed", DurationS: 42, RecordingUrl: "https://rec.example/1"}}}))
	if s.Version != 3 || it.Seq != 2 || it.DurationS != 42 || it.RecordingURL != "https://rec.example/1" || s.ActiveCall != nil {
		t.Fatalf("call completed: %+v %+v", s, it)
	}
	s, it = ok("reply", conv(&actorpb.ConversationCommand{ActorId: "ag_1", Command: &actorpb.ConversationCommand_Reply{
		Reply: &actorpb.Reply{Body: "on it", Kind: "message", ClientId: "cl-1"}}}))
	if s.Version != 4 || !s.Addressed || it.Direction != conversation.Outbound || it.ClientID != "cl-1" || it.AuthorID != "ag_1" {
		t.Fatalf("reply: %+v %+v", s, it)
	}
	replyItem := it
	pending, addressed, assignee, ifv := "pending", false, "ag_1", int64(4)
	s, _ = ok("update", conv(&actorpb.ConversationCommand{Command: &actorpb.ConversationCommand_Update{Update: &actorpb.Update{
		Status: &pending, Addressed: &addressed, AssigneeId: &assignee, TagsAdd: []string{"vip", "billing"}, TagsRemove: []string{"none"}, IfVersion: &ifv}}}))
	if s.Version != 5 || s.Status != conversation.StatusPending || s.Addressed || s.AssigneeID == nil || *s.AssigneeID != "ag_1" ||
		strings.Join(s.Tags, ",") != "billing,vip" && strings.Join(s.Tags, ",") != "vip,billing" {
		t.Fatalf("update: %+v", s)
	}
	conflict := conv(&actorpb.ConversationCommand{Command: &actorpb.ConversationCommand_Update{Update: &actorpb.Update{
		Status: &pending, IfVersion: &ifv}}})
	if conflict.Error == nil || wire.Code(conflict.Error.Code) != wire.CodeConflict {
		t.Fatalf("stale if_version: %v, want a conflict error", conflict)
	}
	s, _ = ok("get", conv(&actorpb.ConversationCommand{Command: &actorpb.ConversationCommand_Get{Get: &actorpb.GetConversation{}}}))
	if s.Version != 5 {
		t.Fatalf("get: version %d", s.Version)
	}
	r := ask(KindConversation, missing, &actorpb.ConversationCommand{ConversationId: missing, AccountId: tnB.account, InboxId: tnB.inbox,
		IdempotencyKey: "xk_missing", Command: &actorpb.ConversationCommand_Get{Get: &actorpb.GetConversation{}}}).(*actorpb.ConversationReply)
	if r.Error == nil || wire.Code(r.Error.Code) != wire.CodeNotFound {
		t.Fatalf("get of an unknown conversation: %v", r)
	}

	// Inbox messages. The conversation's summaries reached its inbox (on B)
	// before its last reply, so the list already shows version 5. (The inbox
	// loaded v1 from the read model when v1's summary woke it, so v2..v5 are
	// its updates: seq 4 at least.)
	page := ask(KindInbox, tnB.inbox, &actorpb.ListConversations{AccountId: tnB.account, InboxId: tnB.inbox, Filter: &actorpb.ListFilter{Statuses: []string{"pending"}, Limit: 10}}).(*actorpb.ConversationPage)
	var listed []conversation.Summary
	if page.Error != nil || json.Unmarshal(page.ConversationsJson, &listed) != nil || len(listed) != 1 || listed[0].ID != id ||
		listed[0].Version != 5 || page.Total != 1 || page.Epoch == "" || page.Seq < 4 {
		t.Fatalf("list: %+v (%s)", page, page.ConversationsJson)
	}
	epochB := page.Epoch
	// A list that includes closed conversations carries the read model's
	// rows; this inbox holds every closed conversation it has (none), so
	// it lists none of them.
	closedSum := staleSummary(tnB, "cv_xnode_closed", 1, conversation.StatusClosed, "bye")
	closedJSON, err := json.Marshal(closedSum)
	if err != nil {
		t.Fatal(err)
	}
	closedPage := ask(KindInbox, tnB.inbox, &actorpb.ListConversations{AccountId: tnB.account, InboxId: tnB.inbox,
		Filter: &actorpb.ListFilter{Statuses: []string{"closed"}, Limit: 10},
		Closed: &actorpb.ClosedRows{Summaries: []*actorpb.SummaryFields{summaryFields(&closedSum)},
			SummariesJson: [][]byte{closedJSON}, Complete: true}}).(*actorpb.ConversationPage)
	if closedPage.Error != nil || closedPage.ReadClosed || string(closedPage.ConversationsJson) != "[]" || closedPage.Total != 0 {
		t.Fatalf("closed list: %+v (%s)", closedPage, closedPage.ConversationsJson)
	}
	counts := ask(KindInbox, tnB.inbox, &actorpb.GetCounts{AccountId: tnB.account, InboxId: tnB.inbox, AgentId: "ag_1"}).(*actorpb.InboxCounts)
	var c map[string]int64
	if counts.Error != nil || json.Unmarshal(counts.CountsJson, &c) != nil || c["pending"] != 1 || c["mine"] != 1 || counts.Seq != page.Seq || counts.Epoch != page.Epoch {
		t.Fatalf("counts: %+v (%s)", counts, counts.CountsJson)
	}
	// Automation: a tick decides nothing here (the inbox has no timers
	// set), and the inbox answers for its round-robin rotation.
	s, _ = ok("tick", conv(&actorpb.ConversationCommand{Command: &actorpb.ConversationCommand_Tick{
		Tick: &actorpb.Tick{NowMs: time.Now().UnixMilli(), SettingsVersion: 0}}}))
	if s.Version != 5 {
		t.Fatalf("tick with nothing due: version %d, want 5", s.Version)
	}
	// Round-robin's answer decides nothing on a conversation that owes no
	// assignment (the inbox is not round-robin): a late answer is harmless.
	s, _ = ok("auto assign", conv(&actorpb.ConversationCommand{Command: &actorpb.ConversationCommand_AutoAssign{
		AutoAssign: &actorpb.AutoAssign{AgentId: "ag_2"}}}))
	if s.Version != 5 || s.AssigneeID == nil || *s.AssigneeID != "ag_1" {
		t.Fatalf("auto assign with nothing owed: version %d, assignee %v; want 5, ag_1", s.Version, s.AssigneeID)
	}
	if as := ask(KindInbox, tnB.inbox, &actorpb.NextAssignee{AccountId: tnB.account, InboxId: tnB.inbox}).(*actorpb.Assignee); as.Error != nil {
		t.Fatalf("next assignee: %v", as.Error)
	}
	other := staleSummary(tnB, "cv_xnode_other", 2, conversation.StatusOpen, "other")
	other.ActiveCall = &conversation.ActiveCall{CallID: "call_xnode", State: conversation.CallRinging}
	if ack := ask(KindInbox, tnB.inbox, summaryChanged(t, other)).(*actorpb.SummaryAck); !ack.Applied || ack.Seq != page.Seq+1 {
		t.Fatalf("summary v2: %+v", ack)
	}
	// From a node that sends the summary's JSON only (older code).
	other = staleSummary(tnB, "cv_xnode_other", 1, conversation.StatusNew, "older")
	jsonOnly := summaryChanged(t, other)
	jsonOnly.Summary = nil
	if ack := ask(KindInbox, tnB.inbox, jsonOnly).(*actorpb.SummaryAck); ack.Applied {
		t.Fatalf("summary v1 after v2: %+v", ack)
	}
	page = ask(KindInbox, tnB.inbox, &actorpb.ListConversations{AccountId: tnA.account, InboxId: tnB.inbox}).(*actorpb.ConversationPage)
	if page.Error == nil || wire.Code(page.Error.Code) != wire.CodeNotFound {
		t.Fatalf("list by another account: %+v", page)
	}
	counts = ask(KindInbox, tnB.inbox, &actorpb.GetCounts{AccountId: tnA.account, InboxId: tnB.inbox}).(*actorpb.InboxCounts)
	if counts.Error == nil || wire.Code(counts.Error.Code) != wire.CodeNotFound {
		t.Fatalf("counts by another account: %+v", counts)
	}

	// Live streams: a session actor on A subscribes to the inbox on B and
	// watches the conversation on B; B's actors Send it their frames.
	got := make(chan proto.Message, 64)
	session, err := a.node.System.Root.SpawnNamed(actor.PropsFromFunc(func(c actor.Context) {
		if m, ok := c.Message().(proto.Message); ok && strings.HasPrefix(string(m.ProtoReflect().Descriptor().FullName()), "switchboard.actors.") {
			got <- m
		}
	}), "xnode-session")
	if err != nil {
		t.Fatal(err)
	}
	next := func() proto.Message {
		t.Helper()
		select {
		case m := <-got:
			seen.walk(m.ProtoReflect())
			return m
		case <-time.After(10 * time.Second):
			t.Fatal("the session on A received nothing for 10s")
			return nil
		}
	}
	tell := func(kind, identity string, msg proto.Message) {
		seen.walk(msg.ProtoReflect())
		pid := a.node.Cluster.Get(identity, kind)
		if pid == nil || pid.Address != b.node.Address() {
			t.Fatalf("%s/%s is at %v, want node B", kind, identity, pid)
		}
		a.node.System.Root.Send(pid, msg)
	}
	subscribe := func(subID uint64) *actorpb.InboxSubscribed {
		t.Helper()
		ack := ask(KindInbox, tnB.inbox, &actorpb.SubscribeInbox{AccountId: tnB.account, InboxId: tnB.inbox, AgentId: "ag_1",
			Subscriber: pbPID(session), SubscriptionId: subID, Filter: &actorpb.ListFilter{Statuses: []string{"new", "open", "pending", "closed"}}}).(*actorpb.Ack)
		if ack.Error != nil {
			t.Fatalf("subscribe: %v", ack.Error)
		}
		sub, ok := next().(*actorpb.InboxSubscribed)
		if !ok || sub.SubscriptionId != subID || sub.InboxId != tnB.inbox || sub.Inbox.GetAddress() != b.node.Address() ||
			sub.Epoch != epochB || sub.Total != 2 || !strings.Contains(string(sub.ConversationsJson), id) || len(sub.CountsJson) == 0 {
			t.Fatalf("first message after subscription %d: %v", subID, sub)
		}
		return sub
	}
	subscribe(7)
	wack := ask(KindConversation, id, &actorpb.WatchConversation{AccountId: tnB.account, ConversationId: id, AgentId: "ag_1",
		Watcher: pbPID(session)}).(*actorpb.Ack)
	if wack.Error != nil {
		t.Fatalf("watch: %v", wack.Error)
	}
	if w, ok := next().(*actorpb.ConversationWatched); !ok || w.ConversationId != id || w.Version != 5 || w.Conversation.GetAddress() != b.node.Address() {
		t.Fatalf("after watch: %v", w)
	}
	if ev, ok := next().(*actorpb.ConversationEvent); !ok || ev.ConversationId != id || wire.Kind(ev.FrameKind) != wire.KindReply || !ev.Presence ||
		string(ev.FrameJson) != `{"type":"presence","conversation_id":"`+id+`","agents":["ag_1"]}` {
		t.Fatalf("presence after watching: %v", ev)
	}
	tell(KindConversation, id, &actorpb.Typing{AccountId: tnB.account, ConversationId: id, AgentId: "ag_2",
		Watcher: &actorpb.Pid{Address: a.node.Address(), Id: "another-session"}})
	// The frame's kind travels with it: the session's queue may drop a
	// typing frame (and only a typing frame) when the connection is behind.
	if ev, ok := next().(*actorpb.ConversationEvent); !ok || ev.ConversationId != id || wire.Kind(ev.FrameKind) != wire.KindTyping ||
		!strings.HasPrefix(string(ev.FrameJson), `{"type":"typing"`) || !strings.Contains(string(ev.FrameJson), "ag_2") {
		t.Fatalf("typing frame: %v", ev)
	}
	ok("reply while watched", conv(&actorpb.ConversationCommand{Command: &actorpb.ConversationCommand_Reply{Reply: &actorpb.Reply{Body: "live"}}}))
	var item *actorpb.ConversationEvent
	var update *actorpb.InboxUpdate
	for item == nil || update == nil {
		switch m := next().(type) {
		case *actorpb.ConversationEvent:
			item = m
		case *actorpb.InboxUpdate:
			update = m
		default:
			t.Fatalf("unexpected %T after a reply", m)
		}
	}
	if wire.Kind(item.FrameKind) != wire.KindReply || !strings.Contains(string(item.FrameJson), `"item"`) || !strings.Contains(string(item.FrameJson), `"live"`) {
		t.Fatalf("item frame: %s", item.FrameJson)
	}
	if update.SubscriptionId != 7 || update.ConversationId != id || update.Version != 6 || update.Seq <= update.PrevSeq ||
		!strings.Contains(string(update.FrameJson), `"version":6`) {
		t.Fatalf("inbox update: %v", update)
	}
	// Unwatch and unsubscribe; a later change reaches the session no more:
	// the next thing it receives is the answer to a new subscription.
	tell(KindConversation, id, &actorpb.UnwatchConversation{ConversationId: id, Watcher: pbPID(session)})
	tell(KindInbox, tnB.inbox, &actorpb.UnsubscribeInbox{InboxId: tnB.inbox, Subscriber: pbPID(session), SubscriptionId: 7})
	tr := true
	ok("update after unsubscribing", conv(&actorpb.ConversationCommand{Command: &actorpb.ConversationCommand_Update{Update: &actorpb.Update{Addressed: &tr}}}))
	subscribe(8)
	// A delivery status report updates the reply in place.
	st, sit := ok("message status", conv(&actorpb.ConversationCommand{Command: &actorpb.ConversationCommand_MessageStatus{
		MessageStatus: &actorpb.MessageStatus{MessageId: replyItem.ID, Status: "delivered", ProviderMessageId: "SM1"}}}))
	if sit.ID != replyItem.ID || sit.Seq != replyItem.Seq || sit.Status != conversation.DeliveryDelivered || sit.ProviderMessageID != "SM1" || st.Version < 7 {
		t.Fatalf("message status: %+v %+v", st, sit)
	}

	// Grain to grain: a conversation on B whose inbox lives on A sends its
	// SummaryChanged across.
	phoneA := phoneOnB(tnA, 4000)
	idA := convID(tnA.inbox, phoneA)
	delivered := testutil.ToFloat64(b.deps.Metrics.InboxDelivery.WithLabelValues("ok"))
	if _, err := a.engine.command(ctx, &actorpb.ConversationCommand{ConversationId: idA, AccountId: tnA.account, InboxId: tnA.inbox,
		Command: &actorpb.ConversationCommand_Inbound{Inbound: &actorpb.InboundMessage{
			Contact: &actorpb.Contact{Phone: phoneA}, Body: "to an inbox on A"}}}); err != nil {
		t.Fatal(err)
	}
	// The conversation replies first and then delivers its summary.
	poll.Until(t, 10*time.Second, "B's summary delivery to the inbox on A", func() bool {
		return testutil.ToFloat64(b.deps.Metrics.InboxDelivery.WithLabelValues("ok")) == delivered+1
	})
	if pid := a.node.Cluster.Get(tnA.inbox, KindInbox); pid.Address != a.node.Address() {
		t.Fatalf("inbox %s at %s, want node A", tnA.inbox, pid.Address)
	}
	pageA, err := a.engine.List(ctx, tnA.account, tnA.inbox, "", inbox.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if listed = nil; json.Unmarshal(pageA.Conversations, &listed) != nil || len(listed) != 1 || listed[0].ID != idA || listed[0].Version != 1 {
		t.Fatalf("inbox on A: %s", pageA.Conversations)
	}
	if got := a.deps.Metrics.ActiveConversations(); got != 0 {
		t.Fatalf("node A activated %d conversations; every one should live on B", got)
	}
	if got := b.deps.Metrics.ActiveConversations(); got < 2 {
		t.Fatalf("node B has %d conversation activations", got)
	}

	// The search actor: any identity of its kind runs an indexer, so pick
	// one owned by B.
	searchID := ""
	for i := 0; searchID == ""; i++ {
		if i > 64 {
			t.Fatal("no search identity owned by B")
		}
		if id := fmt.Sprintf("indexer-x%d", i); owner(id, KindSearch) == b.node.Address() {
			searchID = id
		}
	}
	for _, action := range []actorpb.SearchControl_Action{actorpb.SearchControl_PAUSE, actorpb.SearchControl_STATUS, actorpb.SearchControl_RESUME} {
		st := ask(KindSearch, searchID, &actorpb.SearchControl{Action: action}).(*actorpb.SearchStatus)
		if st.Paused != (action != actorpb.SearchControl_RESUME) {
			t.Fatalf("search actor after %s: %+v", action, st)
		}
	}

	// Every message type of actorpb, also those no actor answers yet (live
	// streams), crosses the wire intact: an echo actor on B returns each,
	// filled in every field, to A.
	echo, err := b.node.System.Root.SpawnNamed(actor.PropsFromFunc(func(c actor.Context) {
		if m, ok := c.Message().(proto.Message); ok && c.Sender() != nil &&
			strings.HasPrefix(string(m.ProtoReflect().Descriptor().FullName()), "switchboard.actors.") {
			c.Respond(m)
		}
	}), "xnode-echo")
	if err != nil {
		t.Fatal(err)
	}
	msgs := actorpb.File_actors_actorpb_messages_proto.Messages()
	echoed := seenTypes{}
	for i := 0; i < msgs.Len(); i++ {
		mt, err := protoregistry.GlobalTypes.FindMessageByName(msgs.Get(i).FullName())
		if err != nil {
			t.Fatal(err)
		}
		msg := mt.New()
		fill(msg, 0)
		res, err := a.node.System.Root.RequestFuture(echo, msg.Interface(), 5*time.Second).Result()
		if err != nil {
			t.Fatalf("%s across nodes: %v", msgs.Get(i).FullName(), err)
		}
		back, ok := res.(proto.Message)
		if !ok || !proto.Equal(back, msg.Interface()) {
			t.Fatalf("%s came back as %v, sent %v", msgs.Get(i).FullName(), res, msg.Interface())
		}
		echoed.walk(back.ProtoReflect())
	}
	// Every message type must also have been exchanged with the real
	// actors above: a new message type needs its cross-node case here.
	var missingTypes []string
	for i := 0; i < msgs.Len(); i++ {
		name := msgs.Get(i).FullName()
		if !echoed[name] {
			t.Errorf("%s never crossed the wire", name)
		}
		if !seen[name] {
			missingTypes = append(missingTypes, string(name.Name()))
		}
	}
	sort.Strings(missingTypes)
	if len(missingTypes) > 0 {
		t.Errorf("message types not exchanged with the actors on B (add them to this test): %s", strings.Join(missingTypes, ", "))
	}
}
