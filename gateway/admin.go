package gateway

import (
	"net/http"

	"github.com/switchboard-dev/switchboard/actors"
	"github.com/switchboard-dev/switchboard/cluster"
)

// clusterInfo lists the members with their activations. The answering node
// counts its own (the gauges /metrics exports, current to the moment); the
// others' come from their gossip heartbeats, which every member publishes
// every gossip interval anyway: reading them costs no request to another
// node, and a slow or dead member cannot hold up the page. Their age says
// how fresh they are.
func (s *Server) clusterInfo(w http.ResponseWriter, r *http.Request) error {
	selfID := s.node.ID()
	me, joined := s.node.Self()
	if joined {
		selfID = me.ID // as the members name it, so a client can find itself
	}
	beats, err := s.node.Heartbeats()
	if err != nil {
		// The members are still worth showing; their numbers go null.
		s.log.Warn("admin: no gossip heartbeats", "err", err)
	}
	members := []map[string]any{}
	for _, m := range s.node.Members() {
		entry := map[string]any{"id": m.ID, "address": m.Address, "kinds": m.Kinds, "status": m.Status, "activations": nil}
		switch hb, heard := beats[m.ID]; {
		case joined && m.ID == me.ID:
			entry["self"] = true
			entry["activations"] = map[string]int64{
				actors.KindConversation: s.actorsM.ActiveConversations(), actors.KindInbox: s.actorsM.ActiveInboxes()}
			entry["activations_age_ms"] = 0
		case heard:
			entry["activations"] = kindCounts(hb)
			entry["activations_age_ms"] = hb.Age.Milliseconds()
		}
		members = append(members, entry)
	}
	writeJSON(w, http.StatusOK, map[string]any{"self": selfID, "members": members})
	return nil
}

// kindCounts is the contract's pair of counts: a member that does not
// host a kind has none of it.
func kindCounts(hb cluster.Heartbeat) map[string]int64 {
	return map[string]int64{
		actors.KindConversation: hb.Activations[actors.KindConversation],
		actors.KindInbox:        hb.Activations[actors.KindInbox]}
}
