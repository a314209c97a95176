// Package loadtest is `switchboard loadtest`: it drives a running server
// purely through the public API (README, "The API in brief") and measures what the
// design promises, in numbers.
//
// It creates its own accounts (admin token), inboxes (account API key) and
// agents, opens one websocket per agent subscribed to its inbox, and then
// sends inbound messages, call events (ringing, then completed) and agent
// replies open loop at --rate for --warmup plus --duration.
//
// # Figures
//
// Latencies are HDR histograms reported as p50/p90/p99/p99.9/max in ms.
//
//   - ack: from a send's due time (open-loop schedule, so a stalled server
//     cannot hide its stall by slowing the tool) to its HTTP answer.
//   - ack from send: from a worker starting the send to its HTTP answer,
//     ack less the tool's own lateness (the schedule lag below; in an idle
//     process Go's timers fire up to 1 ms late, which ack counts).
//   - freshness: from a write's due time to each subscriber of its inbox
//     holding the write's conversation version or a later one (an update,
//     or a snapshot after a resync); one sample per write and subscriber.
//     The update often arrives before the HTTP answer; receive times are
//     kept per (subscriber, conversation, version) and matched when the
//     answer comes.
//   - index lag: for --search-sample of the inbound messages, from the ack
//     to the message being returned by GET /v1/search (polled, at most 5%
//     of the elapsed wait apart). With --pause-indexer-for, samples
//     acknowledged while the indexer was paused are reported apart, beside
//     the freshness of the writes sent meanwhile.
//   - schedule lag: due time to a worker starting the send; large values
//     mean too few --workers, and are warned about.
//   - --compare-sql: the inbox first page (conversations?limit=50 then
//     counts) through the API, beside the page and counts queries on the
//     conversations read model; ratio = SQL / API at p50 and p99.
//   - node cpu: the node process's CPU seconds over the measured window
//     (process_cpu_seconds_total on its /metrics, read at the window's
//     start and end: the node alone, not PostgreSQL or this tool) divided
//     by the writes acknowledged meanwhile, in µs per write; also as
//     cores. --profile FILE captures the node's CPU profile over the same
//     window from /debug/pprof/profile (admin token): `go tool pprof -top
//     FILE`. A profile asked for and not obtained fails the run.
//   - tool cpu: this tool's own CPU seconds over the same window
//     (getrusage), per acknowledged write: on one machine the tool takes
//     its share of the cores the node and PostgreSQL use.
//   - timeline: the measured window cut into --timeline intervals (1 s;
//     0: off) by due time, each with its writes and their ack and
//     freshness p50/p99/max (two significant digits). The summary line
//     gives the median interval's p99 beside the worst one: a tail spread
//     over every interval is queueing, one gathered in a few is a stall to
//     line up with what the node and PostgreSQL did then.
//
// # Correctness counters (must be zero)
//
//   - stale: a subscriber received, for one conversation, a lower version
//     after a higher one.
//   - lost: (writes × subscribers) whose version, or a later one, had not
//     reached the subscriber by the end of --grace after the last answer;
//     plus sampled messages not searchable within --search-timeout (plus
//     the pause).
//   - duplicates: any of
//     (a) a re-send (--resend-share) of an acknowledged message or reply,
//     with the same external_id or client_id, answered as new (201) or
//     with another message id;
//     (b) two distinct acknowledged writes claiming one conversation
//     version (a forked history). The version a write claims is the one
//     its answer names exactly: a message's or reply's seq (the API: "the
//     version at which it was appended"), and the seq of a call's item for
//     the call's first event (it appends the item). It is never the
//     answer's summary version, which may be later (summary_ahead, below).
//     A write claims its version only when answered 201 (messages,
//     replies) or for a call's first event; a later call event updates the
//     item in place, so its answer does not name its own version: it is
//     held to the summary's version for delivery but claims none;
//     (c) a subscriber receiving one version of a conversation twice with
//     different contents. The same version twice with identical contents
//     is harmless: "redelivered".
//     The count is of the tool's evidence; a message stored twice shows in
//     the journal (one items row per external_id), which is the check to
//     run when it is not zero.
//   - gaps: inbox-stream discontinuities the API does not allow. A slow
//     connection may have updates coalesced, so seqs may skip, but an update
//     is only dropped when a newer one of the same conversation replaces it:
//     every skipped seq must be matched by a skipped conversation version.
//     Between two (re)subscriptions, skipped seqs minus skipped versions
//     (when positive) are gaps; a repeated or backward seq, and an epoch
//     change without a resync, are one gap each. All skipped seqs are also
//     reported as "coalesced", and how many jumps as "seq_jumps".
//
// Informational: resyncs, snapshots, redelivered, reconnects, retries,
// "retries_answered_duplicate" (a retry of the tool's own, after an
// attempt whose answer it never saw (timeout, connection lost), answered
// 200: the server had applied that attempt and recognised the key, which
// is correct; a first attempt answered 200 is an "unexpected_replay"
// error instead), "summary_ahead" (a write answered as new whose summary
// was already past the write's version: the server retried the command
// internally, e.g. a cluster try timed out in a busy mailbox, and answered
// the retry from its replay, the same item beside the summary current by
// then; common under overload, harmless), errors (by kind), "unverified" (writes a subscriber cannot be held to
// because a resync snapshot held only the first page and not their
// conversation), "freshness_unmeasured" (delivered, but acknowledged so
// late that the receive time was forgotten).
//
// Sends the tool does not see through: a send not started by --duration
// plus one second (the tool fell behind) is never sent and counted in
// not_sent; a send already started is never cut off by the window's end.
// A send whose every attempt (three, same idempotency key) failed or timed
// out is an error of its kind ("timeout"...): it claims no version and no
// subscriber is held to it, though the server may have applied it.
//
// Main exits 1 when a correctness counter is not zero, a figure the
// scenario should produce is missing, or a --max-* threshold is missed
// (--max-errors defaults to 0); 2 on bad flags.
package loadtest
