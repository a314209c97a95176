package gateway

import (
	"net/http"

	"github.com/switchboard-dev/switchboard/domain/conversation"
	"github.com/switchboard-dev/switchboard/domain/validate"
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
	if err := checked(validate.Key("error_code", in.ErrorCode)); err != nil {
		return err
	}
	if err := checked(validate.Key("provider_message_id", in.ProviderMessageID)); err != nil {
		return err
	}
	res, err := s.engine.ReportStatus(r.Context(), ref.accountID, ref.inboxID, id, r.PathValue("message_id"),
		in.Status, in.ErrorCode, in.ProviderMessageID)
	if err != nil {
		return err
	}
	writeMembers(w, http.StatusOK, member{"message", res.Item}, member{"conversation", res.Summary})
	return nil
}
