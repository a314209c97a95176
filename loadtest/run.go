package loadtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard-dev/switchboard/client"
)

// Bounds on waits that the scenario does not set.
const (
	setupTimeout    = 2 * time.Minute // creating accounts, inboxes, agents
	readyTimeout    = 30 * time.Second
	resumeTimeout   = 10 * time.Second // resuming the indexer, even after cancel
	sendAttempts    = 3                // per write, same idempotency key each time
	lateCutoff      = time.Second      // a send this far past the window is not sent
	maxSearchActive = 256              // sampled messages being polled at once
	pageLimit       = 50               // the inbox first page, as a client asks for it
)

type jobKind int

const (
	kindInbound jobKind = iota
	kindCall
	kindReply
)

// job is one scheduled send; every random choice is made when it is
// scheduled, so a seed reproduces the workload whatever the timing.
type job struct {
	n       int64
	due     time.Time
	started time.Time // when a worker began the send
	kind    jobKind
	inbox   int
	contact int
	search  bool
	resend  bool
}

type agentCred struct{ id, token string }

type inboxState struct {
	id     string
	apiKey string
	agents []agentCred

	mu    sync.Mutex
	convs map[int]string // contact index → conversation id, learnt from acks
}

func (in *inboxState) conv(contact int) string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.convs[contact]
}

func (in *inboxState) setConv(contact int, id string) {
	in.mu.Lock()
	in.convs[contact] = id
	in.mu.Unlock()
}

// replyCred is who replies: an agent when there is one, as in real life.
func (in *inboxState) replyCred() string {
	if len(in.agents) > 0 {
		return in.agents[0].token
	}
	return in.apiKey
}

type runner struct {
	cfg   Config
	api   *apiClient
	tr    *tracker
	runID string

	inboxes []*inboxState
	subs    []*subscriber

	start, measureStart, end time.Time

	ack, ackFromSend, fresh, freshPaused, indexLag, indexLagPaused, schedLag *histogram
	apiPage, sqlPage                                                         *histogram
	timeline                                                                 *timeline // nil: off

	// Paused window of the indexer, as unix nanoseconds (0: not yet).
	pausedSince, resumedAt atomic.Int64
	pauseErr               atomic.Pointer[string]

	scheduled, sent, acked           atomic.Int64 // jobs due in the measured window
	writes, messages, calls, replies atomic.Int64 // acknowledged writes, whole run
	resends, retries, reconnects     atomic.Int64
	retriedDuplicate, summaryAhead   atomic.Int64 // informational, see doc.go
	skipped                          atomic.Int64 // scheduled but never sent (tool behind)
	searchSamples, searchLost        atomic.Int64
	searchSkipped                    atomic.Int64
	ackedTotal                       atomic.Int64 // for the progress line's rate

	errMu    sync.Mutex
	errKinds map[string]int64
	errTotal int64
	firstErr map[string]string
}

func newRunID() string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

// fail counts one failed operation under kind and keeps the first message
// of each kind for the report.
func (r *runner) fail(kind string, err error) {
	r.errMu.Lock()
	defer r.errMu.Unlock()
	r.errKinds[kind]++
	r.errTotal++
	if _, ok := r.firstErr[kind]; !ok && err != nil {
		r.firstErr[kind] = err.Error()
	}
}

func (r *runner) errorCount() int64 {
	r.errMu.Lock()
	defer r.errMu.Unlock()
	return r.errTotal
}

func (r *runner) tag(due time.Time) sendTag {
	return sendTag{
		measured: !due.Before(r.measureStart) && due.Before(r.end),
		paused:   r.indexerPausedAt(due),
		jobDue:   due,
	}
}

func (r *runner) indexerPausedAt(t time.Time) bool {
	since := r.pausedSince.Load()
	if since == 0 || t.UnixNano() < since {
		return false
	}
	until := r.resumedAt.Load()
	return until == 0 || t.UnixNano() < until
}

// Run executes the scenario against the server at cfg.URL and returns the
// report. progress receives a line per second (nil: none). An error means
// the run could not be carried out (bad config, server unreachable, setup
// refused); a run that completed returns its report even when figures are
// bad, for Report.Validate and the thresholds to judge.
func Run(ctx context.Context, cfg Config, progress io.Writer) (*Report, error) {
	cfg.URL = strings.TrimRight(cfg.URL, "/")
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid scenario: %w", err)
	}
	if progress == nil {
		progress = io.Discard
	}
	api, err := newAPIClient(cfg.URL, cfg.RequestTimeout, cfg.Workers+64)
	if err != nil {
		return nil, fmt.Errorf("invalid scenario: %w", err)
	}
	r := &runner{
		cfg:      cfg,
		api:      api,
		runID:    newRunID(),
		errKinds: map[string]int64{},
		firstErr: map[string]string{},
	}
	defer r.api.close()
	for _, h := range []**histogram{&r.ack, &r.ackFromSend, &r.fresh, &r.freshPaused, &r.indexLag, &r.indexLagPaused, &r.schedLag, &r.apiPage, &r.sqlPage} {
		*h = newHistogram()
	}
	r.tr = newTracker(func(d time.Duration, tag sendTag) {
		if !tag.measured {
			return
		}
		r.fresh.Record(d)
		r.timeline.recordFresh(tag.jobDue, d)
		if tag.paused {
			r.freshPaused.Record(d)
		}
	})
	startedAt := time.Now()

	if err := r.setup(ctx); err != nil {
		return nil, err
	}

	var cmp *sqlComparer
	if cfg.CompareSQL {
		var err error
		if cmp, err = openSQLComparer(ctx, cfg.DatabaseURL); err != nil {
			return nil, err
		}
		defer cmp.close()
	}

	subCtx, stopSubs := context.WithCancel(ctx)
	var subWG sync.WaitGroup
	defer func() { stopSubs(); subWG.Wait() }()
	if err := r.startSubscribers(subCtx, &subWG); err != nil {
		return nil, err
	}

	r.start = time.Now()
	r.measureStart = r.start.Add(cfg.Warmup)
	r.end = r.measureStart.Add(cfg.Duration)
	r.timeline = newTimeline(r.measureStart, cfg.Duration, cfg.Timeline)

	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	var bgWG sync.WaitGroup // pause, compare and progress
	var searchWG sync.WaitGroup
	searchSem := make(chan struct{}, maxSearchActive)

	if cfg.PauseIndexerFor > 0 {
		bgWG.Add(1)
		go func() { defer bgWG.Done(); r.pauseIndexer(loadCtx) }()
	}
	if cmp != nil {
		bgWG.Add(1)
		go func() { defer bgWG.Done(); r.compareLoop(loadCtx, cmp) }()
	}
	// Not under loadCtx: the window's end sample must be taken even when
	// the last sends are still out.
	cpuCtx, stopCPU := context.WithCancel(ctx)
	defer stopCPU()
	cpuDone := make(chan *NodeCPU, 1)
	go func() { cpuDone <- r.measureNodeCPU(cpuCtx) }()
	progressDone := make(chan struct{})
	var progressWG sync.WaitGroup
	progressWG.Add(1)
	go func() { defer progressWG.Done(); r.progressLoop(ctx, progress, progressDone) }()
	defer func() { close(progressDone); progressWG.Wait() }()

	// However the run ends, wait for the background work: above all the
	// indexer resume, which must not be cut off by the process exiting.
	defer func() { stopLoad(); searchWG.Wait(); bgWG.Wait() }()

	jobs := make(chan job, cfg.Workers)
	var workWG sync.WaitGroup
	for range cfg.Workers {
		workWG.Add(1)
		go func() {
			defer workWG.Done()
			for j := range jobs {
				r.do(loadCtx, j, searchSem, &searchWG)
			}
		}()
	}

	p := pacer{start: r.start, end: r.end, rate: cfg.Rate}
	total := p.total()
	warm := pacer{start: r.start, end: r.measureStart, rate: cfg.Rate}.total()
	r.scheduled.Store(total - warm)
	r.dispatch(loadCtx, p, jobs)
	close(jobs)
	workWG.Wait()
	if ctx.Err() != nil {
		return nil, fmt.Errorf("run interrupted: %w", ctx.Err())
	}

	// Everything is sent and acknowledged; give updates the grace period to
	// arrive, then close the books.
	graceCtx, cancelGrace := context.WithTimeout(ctx, cfg.Grace)
	_ = r.tr.waitSettled(graceCtx) // a timeout is what "lost" reports
	cancelGrace()
	searchWG.Wait() // each sample is bounded by its own timeout
	stopLoad()
	bgWG.Wait()
	if ctx.Err() != nil {
		return nil, fmt.Errorf("run interrupted: %w", ctx.Err())
	}
	finished := time.Now()
	stopSubs()
	subWG.Wait()

	counts := r.tr.finish()
	rep := r.report(startedAt, finished, counts, <-cpuDone)
	return rep, nil
}

// dispatch feeds the workers on schedule, choosing each job's mix.
func (r *runner) dispatch(ctx context.Context, p pacer, jobs chan<- job) {
	rng := mrand.New(mrand.NewPCG(r.cfg.Seed, 0x5b0a4d))
	cutoffCtx, cancel := context.WithDeadline(ctx, p.end.Add(lateCutoff))
	defer cancel()
	var inbound int64 // inbound messages scheduled, for even search sampling
	emitted := p.run(ctx, realClock{}, func(i int64, due time.Time) bool {
		j := job{n: i, due: due, inbox: rng.IntN(len(r.inboxes)), contact: rng.IntN(r.cfg.Contacts)}
		switch x := rng.Float64(); {
		case x < r.cfg.CallShare:
			j.kind = kindCall
		case x < r.cfg.CallShare+r.cfg.ReplyShare:
			j.kind = kindReply
		}
		j.resend = rng.Float64() < r.cfg.ResendShare
		if j.kind != kindCall && !due.Before(r.measureStart) {
			// Every 1/fraction-th message rather than a coin toss: the
			// same number of samples every run, spread evenly in time.
			// Replies are decided here too as they may fall back to
			// inbound; a reply that does not simply is not searched.
			inbound++
			f := r.cfg.SearchSample
			j.search = math.Floor(float64(inbound)*f) > math.Floor(float64(inbound-1)*f)
		}
		select {
		case jobs <- j:
			return true
		case <-cutoffCtx.Done():
			return false
		}
	})
	r.skipped.Add(p.total() - emitted)
}

// do performs one job. Latencies are measured from the due time, not from
// when a worker got to it (see pacer).
func (r *runner) do(ctx context.Context, j job, searchSem chan struct{}, searchWG *sync.WaitGroup) {
	tag := r.tag(j.due)
	if tag.measured {
		r.sent.Add(1)
		r.schedLag.Record(time.Since(j.due))
	}
	j.started = time.Now()
	in := r.inboxes[j.inbox]
	var ok bool
	switch j.kind {
	case kindCall:
		ok = r.doCall(ctx, j, in, tag)
	case kindReply:
		if conv := in.conv(j.contact); conv != "" {
			ok = r.doReply(ctx, j, in, conv, tag)
			break
		}
		// No conversation with that contact yet: an integration would
		// have had to receive a message first, so send one.
		fallthrough
	default:
		ok = r.doInbound(ctx, j, in, tag, searchSem, searchWG)
	}
	if ok {
		r.ackedTotal.Add(1)
		if tag.measured {
			r.acked.Add(1)
		}
	}
}

// send posts with retries on transient failures, keeping the idempotency
// key, and returns the status of the final attempt and how many attempts
// were made.
func (r *runner) send(ctx context.Context, path, cred string, body, out any) (status, attempts int, err error) {
	for attempts = 1; ; attempts++ {
		status, err = r.api.do(ctx, "POST", path, cred, body, out)
		if err == nil || !retryable(err) || attempts >= sendAttempts || ctx.Err() != nil {
			return status, attempts, err
		}
		r.retries.Add(1)
		t := time.NewTimer(time.Duration(attempts) * 20 * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return status, attempts, ctx.Err()
		}
	}
}

func (r *runner) phone(contact int) string {
	// +1 555 then seven digits: valid E.164, unique per contact of an inbox.
	return fmt.Sprintf("+1555%07d", contact)
}

func (r *runner) searchToken(n int64) string {
	// Letters and digits only, so any tokenizer keeps it whole.
	return fmt.Sprintf("lt%sn%d", r.runID, n)
}

func (r *runner) doInbound(ctx context.Context, j job, in *inboxState, tag sendTag, searchSem chan struct{}, searchWG *sync.WaitGroup) bool {
	token := r.searchToken(j.n)
	body := map[string]any{
		"contact":     map[string]string{"phone": r.phone(j.contact)},
		"body":        "loadtest message " + token,
		"channel":     "sms",
		"external_id": "lt-" + r.runID + "-m" + fmt.Sprint(j.n),
	}
	path := "/v1/inboxes/" + url.PathEscape(in.id) + "/messages"
	var res inboundResp
	status, attempts, err := r.send(ctx, path, in.apiKey, body, &res)
	ackAt := time.Now()
	if err != nil {
		r.fail(errorKind(err), err)
		return false
	}
	convID := res.ConversationID
	if convID == "" {
		convID = res.Conversation.ID
	}
	// The message's seq is the version it was appended at (API); the
	// summary beside it may be later (see noteAnswer).
	version := res.Message.Seq
	if convID == "" || version <= 0 || res.Message.ID == "" {
		r.fail("bad_response", fmt.Errorf("POST %s: answer lacks conversation_id, message.id or seq", path))
		return false
	}
	r.noteAnswer(path, status, attempts, version, res.Conversation.Version)
	r.recordAck(tag, j.due, j.started, ackAt)
	in.setConv(j.contact, convID)
	r.writes.Add(1)
	r.messages.Add(1)
	r.tr.acked(in.id, convID, version, j.due, tag, status == 201)

	if j.search {
		select {
		case searchSem <- struct{}{}:
			r.searchSamples.Add(1)
			searchWG.Add(1)
			go func() {
				defer func() { <-searchSem; searchWG.Done() }()
				r.sampleSearch(ctx, in, token, res.Message.ID, convID, res.Message.Seq, ackAt)
			}()
		default:
			r.searchSkipped.Add(1)
		}
	}
	if j.resend {
		r.resends.Add(1)
		var again inboundResp
		st, _, err := r.send(ctx, path, in.apiKey, body, &again)
		switch {
		case err != nil:
			r.fail(errorKind(err), err)
		case st == 201 || again.Message.ID != res.Message.ID:
			r.tr.duplicate()
		}
	}
	return true
}

// noteAnswer classifies the answer to a message or reply that carries its
// item's seq (version) and the summary's version (0 if absent). A 200 to a
// retry of the tool's own is the server recognising an earlier attempt
// whose answer the tool never saw (timed out, connection lost): correct,
// counted as retries_answered_duplicate. A 200 to a first attempt means the
// server matched a key nobody sent before: an error. A summary past the
// item's version is the server answering from a replay after an internal
// retry: the message is the same, the summary simply current.
func (r *runner) noteAnswer(path string, status, attempts int, version, sumVersion int64) {
	switch {
	case status == 200 && attempts == 1:
		r.fail("unexpected_replay", fmt.Errorf("POST %s: new idempotency key answered 200", path))
	case status == 200:
		r.retriedDuplicate.Add(1)
	case sumVersion > version:
		r.summaryAhead.Add(1)
	}
}

func (r *runner) doCall(ctx context.Context, j job, in *inboxState, tag sendTag) bool {
	path := "/v1/inboxes/" + url.PathEscape(in.id) + "/calls"
	callID := "lt-" + r.runID + "-c" + fmt.Sprint(j.n)
	due, started := j.due, j.started
	for i, state := range []string{"ringing", "completed"} {
		body := map[string]any{
			"contact": map[string]string{"phone": r.phone(j.contact)},
			"call_id": callID,
			"state":   state,
		}
		if state == "completed" {
			body["duration_s"] = 30
		}
		var res callResp
		_, _, err := r.send(ctx, path, in.apiKey, body, &res)
		ackAt := time.Now()
		if err != nil {
			r.fail(errorKind(err), err)
			return false
		}
		convID := res.ConversationID
		if convID == "" {
			convID = res.Conversation.ID
		}
		if convID == "" || res.Conversation.Version <= 0 || res.Call.Seq <= 0 {
			r.fail("bad_response", fmt.Errorf("POST %s: answer lacks conversation_id, call.seq or conversation.version", path))
			return false
		}
		// Which version this event produced: the call's first event
		// appends its item, so call.seq names it exactly, whichever
		// attempt or internal retry answered. A later event updates the
		// item in place and answers with the current summary, which is
		// this event's version or, when the server answered from a
		// replay, a later one: subscribers are held to it (it is
		// committed), but it is not claimed as this event's own.
		version, own := res.Conversation.Version, false
		if i == 0 {
			version, own = res.Call.Seq, true
			if res.Conversation.Version > version {
				r.summaryAhead.Add(1)
			}
		}
		r.recordAck(tag, due, started, ackAt)
		in.setConv(j.contact, convID)
		r.writes.Add(1)
		r.calls.Add(1)
		r.tr.acked(in.id, convID, version, due, tag, own)
		// The hang-up is its own event, due when it is sent.
		due = time.Now()
		started = due
	}
	return true
}

// recordAck records a measured write's acknowledgement: from its due time
// (ack) and from when a worker began sending it (ack from send: without the
// tool's own scheduling lateness).
func (r *runner) recordAck(tag sendTag, due, started, ackAt time.Time) {
	if tag.measured {
		r.ack.Record(ackAt.Sub(due))
		r.ackFromSend.Record(ackAt.Sub(started))
		r.timeline.recordAck(tag.jobDue, ackAt.Sub(due))
	}
}

func (r *runner) doReply(ctx context.Context, j job, in *inboxState, convID string, tag sendTag) bool {
	path := "/v1/conversations/" + url.PathEscape(convID) + "/messages"
	body := map[string]any{
		"body":      "loadtest reply " + r.searchToken(j.n),
		"client_id": "lt-" + r.runID + "-r" + fmt.Sprint(j.n),
	}
	cred := in.replyCred()
	var res replyResp
	status, attempts, err := r.send(ctx, path, cred, body, &res)
	ackAt := time.Now()
	if err != nil {
		r.fail(errorKind(err), err)
		return false
	}
	version := res.msg().Seq
	if version <= 0 || res.msg().ID == "" {
		r.fail("bad_response", fmt.Errorf("POST %s: answer lacks message id or seq", path))
		return false
	}
	var sumVersion int64
	if res.Conversation != nil {
		sumVersion = res.Conversation.Version
	}
	r.noteAnswer(path, status, attempts, version, sumVersion)
	r.recordAck(tag, j.due, j.started, ackAt)
	r.writes.Add(1)
	r.replies.Add(1)
	r.tr.acked(in.id, convID, version, j.due, tag, status == 201)
	if j.resend {
		r.resends.Add(1)
		var again replyResp
		st, _, err := r.send(ctx, path, cred, body, &again)
		switch {
		case err != nil:
			r.fail(errorKind(err), err)
		case st == 201 || again.msg().ID != res.msg().ID:
			r.tr.duplicate()
		}
	}
	return true
}

// sampleSearch polls /v1/search until the message is found or the sample
// times out. The poll interval grows with the wait (5% of it) so the
// measurement error stays proportional while a long pause does not turn
// the sampler into a load of its own.
func (r *runner) sampleSearch(ctx context.Context, in *inboxState, token, msgID, convID string, seq int64, ackAt time.Time) {
	paused := r.indexerPausedAt(ackAt)
	timeout := r.cfg.SearchTimeout + r.cfg.PauseIndexerFor
	deadline := ackAt.Add(timeout)
	query := client.SearchQuery{Q: token, InboxID: in.id, Limit: 10}
	for {
		c, sctx, cancel := r.api.as(ctx, in.apiKey)
		res, err := c.Search(sctx, query)
		cancel()
		now := time.Now()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			r.fail("search", err)
		}
		if err != nil {
			res = &client.SearchResult{}
		}
		for _, h := range res.Hits {
			if h.MessageID == msgID || (h.MessageID == "" && h.ConversationID == convID && h.Seq == seq) {
				if paused {
					r.indexLagPaused.Record(now.Sub(ackAt))
				} else {
					r.indexLag.Record(now.Sub(ackAt))
				}
				return
			}
		}
		if !now.Before(deadline) {
			r.searchLost.Add(1)
			return
		}
		wait := min(max(now.Sub(ackAt)/20, 2*time.Millisecond), time.Second, deadline.Sub(now))
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
}

// pauseIndexer pauses the indexer at the start of the measured window for
// the configured time, then resumes it, whatever happens to the run.
func (r *runner) pauseIndexer(ctx context.Context) {
	if err := (realClock{}).SleepUntil(ctx, r.measureStart); err != nil {
		return
	}
	admin, pctx, cancel := r.api.as(ctx, r.cfg.AdminToken)
	err := admin.PauseIndexer(pctx)
	cancel()
	if err != nil {
		msg := fmt.Sprintf("pause indexer: %v", err)
		r.pauseErr.Store(&msg)
		r.fail("indexer", err)
		return
	}
	r.pausedSince.Store(time.Now().UnixNano())
	defer func() {
		// Leaving the indexer paused would break the server for everyone
		// after the tool exits, so resume even when the run is cancelled.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), resumeTimeout)
		defer cancel()
		err := admin.ResumeIndexer(rctx)
		r.resumedAt.Store(time.Now().UnixNano())
		if err != nil {
			msg := fmt.Sprintf("resume indexer: %v", err)
			r.pauseErr.Store(&msg)
			r.fail("indexer", err)
		}
	}()
	_ = (realClock{}).SleepUntil(ctx, time.Now().Add(r.cfg.PauseIndexerFor))
}

// setup creates the accounts, inboxes and agents of the run, a few at a
// time, and registers every subscriber with the tracker.
func (r *runner) setup(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	keys := make([]string, r.cfg.Accounts)
	err := parallel(ctx, r.cfg.Accounts, min(r.cfg.Workers, 16), func(ctx context.Context, a int) error {
		c, ctx, cancel := r.api.as(ctx, r.cfg.AdminToken)
		defer cancel()
		res, err := c.CreateAccount(ctx, fmt.Sprintf("loadtest-%s-a%d", r.runID, a))
		if err != nil {
			return fmt.Errorf("create account: %w", err)
		}
		if res.APIKey == "" {
			return errors.New("create account: answer has no api_key")
		}
		keys[a] = res.APIKey
		return nil
	})
	if err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	n := r.cfg.Accounts * r.cfg.Inboxes
	r.inboxes = make([]*inboxState, n)
	err = parallel(ctx, n, min(r.cfg.Workers, 16), func(ctx context.Context, i int) error {
		key := keys[i/r.cfg.Inboxes]
		c, cctx, cancel := r.api.as(ctx, key)
		res, err := c.CreateInbox(cctx, client.CreateInboxRequest{Name: fmt.Sprintf("loadtest-%s-i%d", r.runID, i)})
		cancel()
		if err != nil {
			return fmt.Errorf("create inbox: %w", err)
		}
		if res.ID == "" {
			return errors.New("create inbox: answer has no id")
		}
		in := &inboxState{id: res.ID, apiKey: key, convs: map[int]string{}}
		for g := range r.cfg.Agents {
			c, cctx, cancel := r.api.as(ctx, key)
			ag, err := c.CreateAgent(cctx, client.CreateAgentRequest{
				Name:     fmt.Sprintf("loadtest agent %d.%d", i, g),
				Email:    fmt.Sprintf("lt-%s-%d-%d@loadtest.invalid", r.runID, i, g),
				InboxIDs: []string{res.ID},
			})
			cancel()
			if err != nil {
				return fmt.Errorf("create agent: %w", err)
			}
			if ag.Token == "" {
				return errors.New("create agent: answer has no token")
			}
			in.agents = append(in.agents, agentCred{id: ag.Agent.ID, token: ag.Token})
		}
		r.inboxes[i] = in
		return nil
	})
	if err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	return nil
}

// startSubscribers connects every agent and waits until each has its first
// snapshot, so no write is sent before everyone is listening.
func (r *runner) startSubscribers(ctx context.Context, wg *sync.WaitGroup) error {
	for _, in := range r.inboxes {
		for _, ag := range in.agents {
			u, err := wsURLFor(r.cfg.URL, ag.token)
			if err != nil {
				return err
			}
			s := &subscriber{id: r.tr.addSubscriber(in.id), inbox: in.id, wsURL: u, r: r, ready: make(chan struct{}), done: make(chan struct{})}
			r.subs = append(r.subs, s)
		}
	}
	for _, s := range r.subs {
		wg.Add(1)
		go func() { defer wg.Done(); defer close(s.done); s.run(ctx) }()
	}
	deadline := time.NewTimer(readyTimeout)
	defer deadline.Stop()
	for _, s := range r.subs {
		select {
		case <-s.ready:
		case <-s.done:
			return fmt.Errorf("subscriber %d (inbox %s) gave up: %w", s.id, s.inbox, s.err())
		case <-deadline.C:
			return fmt.Errorf("subscriber %d (inbox %s) not subscribed within %s: %v", s.id, s.inbox, readyTimeout, s.err())
		case <-ctx.Done():
			return fmt.Errorf("subscribing: %w", ctx.Err())
		}
	}
	return nil
}

// parallel runs fn for 0..n-1 with at most width at once and returns the
// first error, cancelling the rest.
func parallel(ctx context.Context, n, width int, fn func(context.Context, int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sem := make(chan struct{}, max(width, 1))
	var wg sync.WaitGroup
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := fn(ctx, i); err != nil {
				cancel(err)
			}
		}()
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return nil
}

// progressLoop prints one line a second until done is closed.
func (r *runner) progressLoop(ctx context.Context, w io.Writer, done <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var lastAcked int64
	last := time.Now()
	for {
		select {
		case <-done:
			return
		case <-ctx.Done():
			return
		case now := <-t.C:
			acked := r.ackedTotal.Load()
			rate := float64(acked-lastAcked) / now.Sub(last).Seconds()
			lastAcked, last = acked, now
			phase := "measure"
			switch {
			case now.Before(r.measureStart):
				phase = "warmup"
			case !now.Before(r.end):
				phase = "drain"
			}
			c := r.tr.snapshotCounts()
			fmt.Fprintf(w, "[%5.1fs] %-7s rate %6.0f/s  ack p99 %s  fresh p99 %s  index p99 %s  errors %d  stale %d  dup %d  pending %d\n",
				now.Sub(r.start).Seconds(), phase, rate,
				fmtQ(r.ack), fmtQ(r.fresh), fmtQ(r.indexLag),
				r.errorCount(), c.Stale, c.Duplicates, c.Pending)
		}
	}
}

func fmtQ(h *histogram) string {
	d := h.Quantile(99)
	if d < 0 {
		return "-"
	}
	return fmtMS(float64(d) / float64(time.Millisecond))
}

func fmtMS(ms float64) string {
	switch {
	case ms >= 1000:
		return fmt.Sprintf("%.2fs", ms/1000)
	case ms >= 10:
		return fmt.Sprintf("%.0fms", ms)
	default:
		return fmt.Sprintf("%.2fms", ms)
	}
}

func (r *runner) errorKinds() (map[string]int64, map[string]string) {
	r.errMu.Lock()
	defer r.errMu.Unlock()
	kinds := make(map[string]int64, len(r.errKinds))
	for k, v := range r.errKinds {
		kinds[k] = v
	}
	first := make(map[string]string, len(r.firstErr))
	for k, v := range r.firstErr {
		first[k] = v
	}
	return kinds, first
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
