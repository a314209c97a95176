package actors

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/switchboard-dev/switchboard/actors/actorpb"
	"github.com/switchboard-dev/switchboard/wire"
)

// presenceSession is a stand-in for a websocket session actor: it collects
// the presence frames a conversation Sends it, in order.
type presenceSession struct {
	pid    *actor.PID
	frames chan []string   // the agents of each presence frame
	conv   chan *actor.PID // the activation that answered the watch
}

func spawnPresenceSession(t *testing.T, n *tnode, name string) *presenceSession {
	t.Helper()
	s := &presenceSession{frames: make(chan []string, 64), conv: make(chan *actor.PID, 1)}
	pid, err := n.node.System.Root.SpawnNamed(actor.PropsFromFunc(func(c actor.Context) {
		if w, ok := c.Message().(*actorpb.ConversationWatched); ok {
			s.conv <- pidOf(w.Conversation)
			return
		}
		ev, ok := c.Message().(*actorpb.ConversationEvent)
		if !ok {
			return
		}
		if isPresence := strings.HasPrefix(string(ev.FrameJson), `{"type":"presence"`); isPresence != ev.Presence {
			s.frames <- []string{fmt.Sprintf("presence %t on %s", ev.Presence, ev.FrameJson)}
			return
		} else if !isPresence {
			return
		}
		var f struct {
			Agents []string `json:"agents"`
		}
		if err := json.Unmarshal(ev.FrameJson, &f); err != nil || f.Agents == nil || wire.Kind(ev.FrameKind) != wire.KindReply {
			f.Agents = []string{fmt.Sprintf("bad frame %s (kind %d): %v", ev.FrameJson, ev.FrameKind, err)}
		}
		s.frames <- f.Agents
	}), name)
	if err != nil {
		t.Fatal(err)
	}
	s.pid = pid
	return s
}

// expect waits for the next presence frame and checks its agents.
func (s *presenceSession) expect(t *testing.T, who string, want ...string) {
	t.Helper()
	select {
	case got := <-s.frames:
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("%s: presence %q, want %q", who, got, want)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("%s: no presence frame within 15s (want %q)", who, want)
	}
}

// TestPresenceCrossNode: watchers on two other nodes than the conversation's
// see each other come and go; when the node holding one agent's sessions
// leaves, the Terminated protoactor delivers for them takes that agent out
// of the presence the others get.
func TestPresenceCrossNode(t *testing.T) {
	t.Run("node stops", func(t *testing.T) { testPresenceCrossNode(t, func(n *tnode) { n.node.Stop() }) })
	// A crash: the node's remoting dies without a goodbye; the
	// conversation's node loses its connection, and protoactor's endpoint
	// watcher delivers Terminated (address terminated) for the PIDs there.
	t.Run("node's remoting killed", func(t *testing.T) {
		testPresenceCrossNode(t, func(n *tnode) { n.node.Cluster.Remote.Shutdown(false) })
	})
}

func testPresenceCrossNode(t *testing.T, leave func(*tnode)) {
	nodes := startCluster(t, 3)
	a, b, c := nodes[0], nodes[1], nodes[2]
	tn := newTenantIDs(t, a.store, "Presence")
	var id, phone string
	for i := 0; id == ""; i++ {
		if i > 200 {
			t.Fatal("no conversation id owned by B")
		}
		p := fmt.Sprintf("+1415555%04d", 5000+i)
		if cid := convID(tn.inbox, p); a.owner(KindConversation, cid) == b.node.Address() {
			id, phone = cid, p
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := a.engine.command(ctx, &actorpb.ConversationCommand{ConversationId: id, AccountId: tn.account, InboxId: tn.inbox,
		Command: &actorpb.ConversationCommand_Inbound{Inbound: &actorpb.InboundMessage{Contact: &actorpb.Contact{Phone: phone}, Body: "who is here?"}}}); err != nil {
		t.Fatal(err)
	}
	watch := func(n *tnode, s *presenceSession, agentID string) {
		t.Helper()
		if err := n.engine.Watch(ctx, tn.account, id, agentID, s.pid, false); err != nil {
			t.Fatalf("watch as %q: %v", agentID, err)
		}
	}

	onA := spawnPresenceSession(t, a, "presence-a")
	watch(a, onA, "ag_a")
	onA.expect(t, "A after its watch", "ag_a")

	onC := spawnPresenceSession(t, c, "presence-c")
	watch(c, onC, "ag_c")
	onC.expect(t, "C after its watch", "ag_a", "ag_c")
	onA.expect(t, "A when C watches", "ag_a", "ag_c")

	// ag_c's second tab, and an account key: both get the presence, and
	// nobody else hears of it (the agents did not change).
	tab2 := spawnPresenceSession(t, c, "presence-c2")
	watch(c, tab2, "ag_c")
	tab2.expect(t, "C's second tab", "ag_a", "ag_c")
	key := spawnPresenceSession(t, a, "presence-key")
	watch(a, key, "")
	key.expect(t, "an account key", "ag_a", "ag_c")
	// One of ag_c's tabs closes: ag_c is still there, nothing is sent.
	c.node.System.Root.Send(<-tab2.conv, UnwatchMessage(id, tab2.pid))

	// ag_c's node leaves: its remaining session terminates with it.
	leave(c)
	onA.expect(t, "A after C's node left", "ag_a")
	key.expect(t, "the account key after C's node left", "ag_a")

	// And an unwatch is heard as well.
	a.node.System.Root.Send(<-onA.conv, UnwatchMessage(id, onA.pid))
	key.expect(t, "the account key after A unwatched")
	select {
	case got := <-onA.frames:
		t.Fatalf("A got presence %q after unwatching", got)
	default:
	}
}
