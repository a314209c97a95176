package gateway

import (
	"context"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/switchboard-dev/switchboard/consumers/indexer"
)

// Indexer is the search actor as operators drive it, from any node.
type Indexer interface {
	Pause(ctx context.Context) (indexer.Stats, error)
	Resume(ctx context.Context) (indexer.Stats, error)
	Stats(ctx context.Context) (indexer.Stats, error)
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
		if err := noBody(w, r); err != nil {
			return err
		}
		if s.indexer == nil {
			return errorf(codeUnavailable, "no indexer runs on this node")
		}
		change := s.indexer.Resume
		if paused {
			change = s.indexer.Pause
		}
		if _, err := change(r.Context()); err != nil {
			return err
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
	// A search actor that cannot be reached leaves its figures null: the
	// rest of the page still says how the node is doing.
	if s.indexer != nil {
		if st, err := s.indexer.Stats(r.Context()); err == nil {
			out["index_lag_ms"], out["index_backlog"], out["indexer_paused"] = st.LagMs, st.Backlog, st.Paused
			out["indexed_total"], out["index_last_error"] = st.Indexed, st.LastError
		}
	}
	s.webhookStats(out)
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
