package gateway

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/switchboard-dev/switchboard/persistence"
)

// The credential endpoints of docs/api.md "Set-up": agents listed and deleted,
// agent tokens issued and revoked, API keys issued, listed and deleted.
// Every revocation closes the credential's websockets here at once, and on
// the other nodes when the database's notice reaches them.

func (s *Server) listAgents(w http.ResponseWriter, r *http.Request) error {
	p := principalFrom(r.Context())
	agents, err := s.store.ListAgents(r.Context(), p.AccountID, p.AgentID)
	if err != nil {
		return err
	}
	if agents == nil {
		agents = []persistence.Agent{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"agents": agents})
	return nil
}

// me answers who the credential is: its account, and its agent for an agent
// token (null for an account key). A client learns its role and "me"
// without guessing from what else it may read.
func (s *Server) me(w http.ResponseWriter, r *http.Request) error {
	p := principalFrom(r.Context())
	var agent *persistence.Agent
	if isAgent(p) {
		agents, err := s.store.ListAgents(r.Context(), p.AccountID, p.AgentID)
		if err != nil {
			return err
		}
		if len(agents) == 0 {
			return errUnauthorized // deleted since the credential was checked
		}
		agent = &agents[0]
	}
	writeJSON(w, http.StatusOK, map[string]any{"account_id": p.AccountID, "agent": agent})
	return nil
}

// colleague is an agent as the other agents of its inboxes see it: GET
// /v1/agents shows an agent only itself, with its email and memberships,
// but the people who share an inbox work by each other's names.
type colleague struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Status string `json:"status"`
}

func (s *Server) inboxAgents(w http.ResponseWriter, r *http.Request) error {
	ib, err := s.inbox(r, r.PathValue("inbox_id"))
	if err != nil {
		return err
	}
	agents, err := s.store.InboxAgents(r.Context(), ib.AccountID, ib.ID)
	if err != nil {
		return err
	}
	out := make([]colleague, len(agents))
	for i, ag := range agents {
		out[i] = colleague{ID: ag.ID, Name: ag.Name, Status: ag.Status}
	}
	writeJSON(w, http.StatusOK, map[string]any{"agents": out})
	return nil
}

// agentTarget is the path's agent for an account-key-only endpoint.
func (s *Server) agentTarget(r *http.Request) (principal, string, error) {
	p, id := principalFrom(r.Context()), r.PathValue("agent_id")
	if isAgent(p) {
		return p, "", s.refuseAgent(r.Context(), p, id)
	}
	return p, id, nil
}

// refuseAgent answers an agent acting on agent id where its role may not:
// 403 for a colleague (an agent of one of its inboxes), 404 for any other
// id, so that agents outside its inboxes or account are not revealed
// (docs/api.md, Credentials).
func (s *Server) refuseAgent(ctx context.Context, p principal, id string) error {
	agents, err := s.store.ListAgents(ctx, p.AccountID, id)
	if err != nil {
		return err
	}
	for _, ag := range agents {
		for _, inbox := range ag.InboxIDs {
			if slices.Contains(p.InboxIDs, inbox) {
				return errForbidden
			}
		}
	}
	return notFound("agent")
}

func (s *Server) deleteAgent(w http.ResponseWriter, r *http.Request) error {
	p, id, err := s.agentTarget(r)
	if err != nil {
		return err
	}
	if err := noBody(w, r); err != nil {
		return err
	}
	if err := s.store.DeleteAgent(r.Context(), p.AccountID, id); err != nil {
		return agentErr(err)
	}
	s.closeRevoked(persistence.Revocation{AccountID: p.AccountID, AgentID: id})
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) createAgentToken(w http.ResponseWriter, r *http.Request) error {
	p, id, err := s.agentTarget(r)
	if err != nil {
		return err
	}
	if err := noBody(w, r); err != nil {
		return err
	}
	token, err := s.store.CreateAgentToken(r.Context(), p.AccountID, id)
	if err != nil {
		return agentErr(err)
	}
	writeJSON(w, http.StatusCreated, map[string]any{"token": token})
	return nil
}

// revokeAgentTokens is for the account key, and for an agent signing itself
// out everywhere.
func (s *Server) revokeAgentTokens(w http.ResponseWriter, r *http.Request) error {
	p := principalFrom(r.Context())
	id := r.PathValue("agent_id")
	if isAgent(p) && p.AgentID != id {
		return s.refuseAgent(r.Context(), p, id)
	}
	if err := noBody(w, r); err != nil {
		return err
	}
	if err := s.store.RevokeAgentTokens(r.Context(), p.AccountID, id); err != nil {
		return agentErr(err)
	}
	s.closeRevoked(persistence.Revocation{AccountID: p.AccountID, AgentID: id})
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func agentErr(err error) error {
	if errors.Is(err, persistence.ErrNotFound) {
		return notFound("agent")
	}
	return err
}

func (s *Server) createAPIKey(w http.ResponseWriter, r *http.Request) error {
	p := principalFrom(r.Context())
	if isAgent(p) {
		return errForbidden
	}
	if err := noBody(w, r); err != nil {
		return err
	}
	k, secret, err := s.store.CreateAPIKey(r.Context(), p.AccountID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"id": k.ID, "api_key": secret, "created_at": k.CreatedAt.UTC().Format(time.RFC3339Nano)})
	return nil
}

func (s *Server) listAPIKeys(w http.ResponseWriter, r *http.Request) error {
	p := principalFrom(r.Context())
	if isAgent(p) {
		return errForbidden
	}
	keys, err := s.store.ListAPIKeys(r.Context(), p.AccountID)
	if err != nil {
		return err
	}
	out := make([]map[string]any, 0, len(keys))
	for _, k := range keys {
		out = append(out, map[string]any{"id": k.ID, "created_at": k.CreatedAt.UTC().Format(time.RFC3339Nano)})
	}
	writeJSON(w, http.StatusOK, map[string]any{"api_keys": out})
	return nil
}

func (s *Server) deleteAPIKey(w http.ResponseWriter, r *http.Request) error {
	p := principalFrom(r.Context())
	if isAgent(p) {
		return errForbidden
	}
	if err := noBody(w, r); err != nil {
		return err
	}
	id := r.PathValue("id")
	err := s.store.DeleteAPIKey(r.Context(), p.AccountID, id)
	if errors.Is(err, persistence.ErrNotFound) {
		return notFound("api key")
	}
	if err != nil {
		return err
	}
	s.closeRevoked(persistence.Revocation{AccountID: p.AccountID, CredentialID: id})
	w.WriteHeader(http.StatusNoContent)
	return nil
}
