package gateway

import (
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/switchboard-dev/switchboard/consumers/indexer"
)

// Indexer is the search indexer as operators drive it.
type Indexer interface {
	Pause()
	Resume()
	Stats() indexer.Stats
}

// CommitLatency is the persistence actor as the admin page reads it.
type CommitLatency interface {
	// CommitP99 is the p99 commit duration over about the last minute,
	// false when nothing committed in that time.
	CommitP99() (time.Duration, bool)
}

// setIndexerPaused pauses or resumes indexing: operators stall it for
// search-backend maintenance, and nothing but search lag notices.
func (s *Server) setIndexerPaused(paused bool) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		if s.indexer == nil {
			return errorf(codeUnavailable, "no indexer runs on this node")
		}
		if paused {
			s.indexer.Pause()
		} else {
			s.indexer.Resume()
		}
		s.log.Info("indexer changed by operator", "paused", paused)
		writeJSON(w, http.StatusOK, map[string]any{"paused": paused})
		return nil
	}
}

func (s *Server) stats(w http.ResponseWriter, r *http.Request) error {
	out := map[string]any{
		"ingest_per_s":         s.ingest.perSecond(),
		"commit_p99_ms":        nil,
		"active_conversations": s.actorsM.ActiveConversations(),
		"active_inboxes":       s.actorsM.ActiveInboxes(),
		"ws_connections":       s.wsConnections.Load(),
		"uptime_s":             int64(time.Since(s.started).Seconds()),
		"index_lag_ms":         nil,
		"index_backlog":        nil,
		"indexer_paused":       false,
	}
	if s.commits != nil {
		if d, ok := s.commits.CommitP99(); ok {
			out["commit_p99_ms"] = float64(d) / float64(time.Millisecond)
		}
	}
	if s.indexer != nil {
		st := s.indexer.Stats()
		out["index_lag_ms"], out["index_backlog"], out["indexer_paused"] = st.LagMs, st.Backlog, st.Paused
		out["indexed_total"], out["index_last_error"] = st.Indexed, st.LastError
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// profiles serves net/http/pprof behind the admin token: operators profile
// a live node without restarting it.
func (s *Server) profiles() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return s.admin(func(w http.ResponseWriter, r *http.Request) error {
		mux.ServeHTTP(w, r)
		return nil
	})
}
