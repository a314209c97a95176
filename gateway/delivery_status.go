package gateway

import (
	"net/http"
	"unicode/utf8"

	"github.com/switchboard-dev/switchboard/domain/conversation"
)

// messageStatus is POST /v1/conversations/{id}/messages/{message_id}/status:
// the integration that sent an agent's reply through a carrier reports how
// it went. Reports that are not a step forward answer 200 with the message
// as it is (carriers report out of order and more than once).
func (s *Server) messageStatus(w http.ResponseWriter, r *http.Request) error {
	if isAgent(principalFrom(r.Context())) {
		return errForbidden
	}
	id := r.PathValue("id")
	ref, err := s.conversationRef(r, id)
	if err != nil {
		return err
	}
	var in struct {
		Status            string `json:"status"`
		ErrorCode         string `json:"error_code"`
		ProviderMessageID string `json:"provider_message_id"`
	}
	if err := decode(w, r, &in); err != nil {
		return err
	}
	if !conversation.DeliveryStatus(in.Status).Reportable() {
		return errorf(codeInvalid, "status must be one of queued, sent, delivered, failed, undelivered")
	}
	for field, v := range map[string]string{"error_code": in.ErrorCode, "provider_message_id": in.ProviderMessageID} {
		if len(v) > 128 || !utf8.ValidString(v) || hasControl(v) {
			return errorf(codeInvalid, "%s must be at most 128 characters without control characters", field)
		}
	}
	res, err := s.engine.ReportStatus(r.Context(), ref.accountID, ref.inboxID, id, r.PathValue("message_id"),
		in.Status, in.ErrorCode, in.ProviderMessageID)
	if err != nil {
		return err
	}
	writeMembers(w, http.StatusOK, member{"message", res.Item}, member{"conversation", res.Summary})
	return nil
}

func hasControl(v string) bool {
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return true
		}
	}
	return false
}
