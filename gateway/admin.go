package gateway

import (
	"net/http"
)

func (s *Server) clusterInfo(w http.ResponseWriter, r *http.Request) error {
	self := s.node.ID()
	members := []map[string]any{}
	for _, m := range s.node.Members() {
		entry := map[string]any{"id": m.ID, "address": m.Address, "kinds": m.Kinds, "status": m.Status}
		if m.ID == self {
			entry["activations"] = map[string]int64{
				"conversation": s.actorsM.ActiveConversations(), "inbox": s.actorsM.ActiveInboxes()}
		} else {
			entry["activations"] = nil // known to that node; see its own /v1/admin/cluster
		}
		members = append(members, entry)
	}
	writeJSON(w, http.StatusOK, map[string]any{"self": self, "members": members})
	return nil
}
