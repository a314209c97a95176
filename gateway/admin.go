package gateway

import (
	"net/http"
	"strings"
)

func (s *Server) clusterInfo(w http.ResponseWriter, r *http.Request) error {
	self := s.node.ID()
	members := []map[string]any{}
	for _, m := range s.node.Members() {
		entry := map[string]any{"id": m.ID, "address": m.Address, "kinds": m.Kinds, "status": m.Status}
		if s.isSelf(m.ID, m.Address) {
			entry["self"] = true
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

// isSelf matches a member to this node. Member ids may carry a
// "<cluster>@" prefix that the actor system's own id lacks, so the id is
// compared up to that prefix, and the remoting address decides otherwise.
func (s *Server) isSelf(id, address string) bool {
	self := s.node.ID()
	if id == self || strings.HasSuffix(id, "@"+self) {
		return true
	}
	return address != "" && address == s.node.Address()
}
