/**
 * switchboard.js — the Switchboard websocket client (an ES module, no build
 * step, no dependencies). It speaks the protocol of the API's (docs/api.md) websocket
 * section and does the parts that are easy to get subtly wrong:
 *
 * - reconnect with exponential backoff and jitter, then resume every inbox
 *   subscription from its (epoch, seq) so no update is missed;
 * - snapshot and resync handling: a snapshot replaces what is held;
 * - a per-conversation version guard: a summary older than (or as old as)
 *   the one held is never applied, whichever path it came by (update,
 *   snapshot, an ack, a REST answer fed to {@link Switchboard#apply});
 * - request ids ↔ `ref`, with acks, errors and timeouts as promises; a
 *   `send` whose ack was lost to a disconnect is sent again after the
 *   reconnect under the same `client_id`, which the server de-duplicates;
 * - watches re-established after a reconnect.
 *
 * @example
 * import { Switchboard } from "/assets/switchboard.js";
 * const sb = new Switchboard({ token: agentToken });
 * sb.on("state", ({ state }) => console.log(state));
 * sb.on("conversation", ({ conversation, counts }) => render(conversation, counts));
 * sb.connect();
 * await sb.subscribe(inboxId);
 * const message = await sb.send(conversationId, "Hello!");
 *
 * @module switchboard
 */

/** Connection states, in the order a connection normally goes through them. */
export const States = Object.freeze({
  CONNECTING: "connecting", // first connection attempt
  LIVE: "live", // connected, subscriptions answered
  RECONNECTING: "reconnecting", // the connection was lost; waiting to retry
  RESUMED: "resumed", // reconnected and every subscription continued where it was
  RESYNCED: "resynced", // reconnected (or fell behind) and at least one inbox got a fresh snapshot
  CLOSED: "closed", // close() was called
});

/** An error answer of the server ({"error": {code, message}}), or a client-side failure. */
export class SwitchboardError extends Error {
  /**
   * @param {string} code docs/api.md error code, or `timeout` / `disconnected` / `closed` / `cancelled`
   * @param {string} message
   */
  constructor(code, message) {
    super(message);
    this.name = "SwitchboardError";
    this.code = code;
  }
}

const OPEN = 1;

/**
 * A Switchboard websocket client.
 *
 * Events (subscribe with {@link Switchboard#on}):
 * - `state` `{state, previous}` — see {@link States}
 * - `snapshot` `{inbox_id, conversations, counts, total}` — the inbox's list was replaced
 * - `conversation` `{inbox_id, conversation, counts}` — a newer summary was applied
 * - `counts` `{inbox_id, counts}` — the inbox's counts changed
 * - `resync` `{inbox_id, reason}` — continuity was lost; a snapshot follows
 * - `watching` `{conversation_id, version}` — a watch was (re)established: reload the timeline
 * - `item` `{conversation_id, item}` — a new or updated timeline item (message, note, call)
 * - `typing` `{conversation_id, agent_id}` — another agent is typing
 * - `presence` `{conversation_id, agents}` — the agents watching a conversation now
 * - `error` `{error}` — an error frame that answers no request
 * - `disconnected` `{code, reason, opened}` — the connection closed or an attempt failed
 *   (`opened` false); the client reconnects. A browser cannot see why an attempt failed (a
 *   revoked token answers 401 before the upgrade): ask the REST API when it matters.
 */
export class Switchboard {
  /**
   * @param {object} opts
   * @param {string} opts.token an agent token (sent as `?access_token=`)
   * @param {string} [opts.url] the server's base URL (http(s):// or ws(s)://); defaults to the page's origin
   * @param {typeof WebSocket} [opts.WebSocket] a WebSocket implementation; defaults to the global one
   * @param {number} [opts.timeoutMs=10000] how long a request waits for its answer
   * @param {number} [opts.backoffMs=250] the first reconnect delay
   * @param {number} [opts.maxBackoffMs=10000] the longest reconnect delay
   * @param {number} [opts.pingMs=20000] how often an idle connection is checked (0: never)
   * @param {() => number} [opts.random=Math.random] jitter source
   */
  constructor(opts) {
    if (!opts || !opts.token) throw new TypeError("Switchboard: token is required");
    this.token = opts.token;
    this.url = wsBase(opts.url);
    this.WebSocket = opts.WebSocket || globalThis.WebSocket;
    if (!this.WebSocket) throw new TypeError("Switchboard: no WebSocket implementation (pass opts.WebSocket)");
    this.timeoutMs = opts.timeoutMs ?? 10000;
    this.backoffMs = opts.backoffMs ?? 250;
    this.maxBackoffMs = opts.maxBackoffMs ?? 10000;
    this.pingMs = opts.pingMs ?? 20000;
    this.random = opts.random || Math.random;

    /** @type {string} one of {@link States} */
    this.state = States.CLOSED;
    /** Per inbox: {filter, epoch, seq, conversations: Map<id, summary>, counts, total}. */
    this.inboxes = new Map();
    /** Conversation ids being watched (→ the id of their last watch request). */
    this.watches = new Map();
    // Conversations whose watch asked for summaries.
    this._summaries = new Set();

    this._ws = null;
    this._listeners = new Map();
    this._pending = new Map(); // id → {frame, resolve, reject, timer, replay}
    this._nextId = 1;
    this._attempt = 0;
    this._everLive = false;
    this._reconnectTimer = null;
    this._pingTimer = null;
    this._typingSent = new Map();
    this._restoring = null; // after a reconnect: {waiting: Set<inbox>, resynced: bool}
    this._live = false; // the current connection opened
  }

  /**
   * Listens to an event.
   * @param {string} type
   * @param {(detail: any) => void} fn
   * @returns {() => void} a function that stops listening
   */
  on(type, fn) {
    if (!this._listeners.has(type)) this._listeners.set(type, new Set());
    this._listeners.get(type).add(fn);
    return () => this._listeners.get(type).delete(fn);
  }

  _emit(type, detail) {
    for (const fn of this._listeners.get(type) || []) {
      try {
        fn(detail);
      } catch (err) {
        // A listener's bug must not break the protocol state machine.
        console.error("switchboard: listener for", type, "threw", err);
      }
    }
  }

  _setState(state) {
    if (state === this.state) return;
    const previous = this.state;
    this.state = state;
    this._emit("state", { state, previous });
  }

  /** Opens the connection (and keeps it open until {@link Switchboard#close}). */
  connect() {
    if (this._ws || this._reconnectTimer) return;
    this._setState(this._everLive ? States.RECONNECTING : States.CONNECTING);
    this._open();
  }

  /** Closes the connection for good; pending requests fail with `closed`. */
  close() {
    clearTimeout(this._reconnectTimer);
    this._reconnectTimer = null;
    clearInterval(this._pingTimer);
    const ws = this._ws;
    this._ws = null;
    if (ws) {
      ws.onclose = ws.onmessage = ws.onerror = ws.onopen = null;
      try { ws.close(1000); } catch { /* already closed */ }
    }
    for (const [id, p] of this._pending) this._settle(id, p, new SwitchboardError("closed", "the client was closed"));
    this._setState(States.CLOSED);
  }

  /**
   * Drops the current connection as a network failure would; the client
   * reconnects and resumes. For tests and for a "reconnect now" button.
   */
  drop() {
    if (this._ws) this._ws.close(4000, "dropped by the client");
  }

  _open() {
    const ws = new this.WebSocket(this.url + "?access_token=" + encodeURIComponent(this.token));
    this._ws = ws;
    ws.onopen = () => this._opened(ws);
    ws.onmessage = (ev) => {
      let frame;
      try {
        frame = JSON.parse(typeof ev.data === "string" ? ev.data : String(ev.data));
      } catch {
        return; // the server sends JSON only; anything else is noise
      }
      this._frame(frame);
    };
    ws.onclose = (ev) => this._closed(ws, ev);
    // A failed connection attempt is an error followed by close, except in
    // Node 20's WebSocket, which never reports the close: treat an error
    // before open as the close (_closed ignores the second report).
    ws.onerror = () => { if (ws.readyState !== OPEN) this._closed(ws); };
  }

  _opened(ws) {
    if (ws !== this._ws) return;
    this._live = true;
    this._attempt = 0;
    const reconnect = this._everLive;
    clearInterval(this._pingTimer);
    if (this.pingMs > 0) this._pingTimer = setInterval(() => this._heartbeat(), this.pingMs);

    // Re-send what the server must hear again: subscriptions (resuming
    // from where each inbox was), watches, and sends whose ack the last
    // connection lost. A request still pending is re-sent as it is, under
    // its id, so its caller's promise is the one that settles.
    this._restoring = { waiting: new Set(this.inboxes.keys()), resynced: false };
    for (const [inbox, st] of this.inboxes) {
      const p = this._pending.get(st.req);
      if (p) p.frame = this._subscribeFrame(inbox, st, st.req);
    }
    for (const p of this._pending.values()) if (p.replay) this._write(p.frame);
    // New requests write themselves.
    for (const [inbox, st] of this.inboxes) {
      if (!this._pending.has(st.req)) this._subscribeRequest(inbox, st).catch(() => {});
    }
    for (const [conv, req] of this.watches) {
      if (!this._pending.has(req)) this._watchRequest(conv).catch(() => {});
    }
    if (this._restoring.waiting.size === 0) this._restored(reconnect);
  }

  _restored(reconnect) {
    const resynced = this._restoring && this._restoring.resynced;
    this._restoring = null;
    this._everLive = true;
    this._setState(!reconnect ? States.LIVE : resynced ? States.RESYNCED : States.RESUMED);
  }

  _closed(ws, ev) {
    if (ws !== this._ws) return;
    this._ws = null;
    const opened = !!this._live;
    this._live = false;
    clearInterval(this._pingTimer);
    // Requests that cannot be replayed fail now; the caller decides.
    for (const [id, p] of this._pending) {
      if (!p.replay) this._settle(id, p, new SwitchboardError("disconnected", "the connection was lost before the answer"));
    }
    this._setState(this._everLive ? States.RECONNECTING : States.CONNECTING);
    // Exponential backoff with jitter: a node restart must not be met by
    // every console reconnecting in the same millisecond.
    const cap = Math.min(this.maxBackoffMs, this.backoffMs * 2 ** this._attempt);
    const delay = cap / 2 + this.random() * (cap / 2);
    this._attempt++;
    this._reconnectTimer = setTimeout(() => {
      this._reconnectTimer = null;
      this._open();
    }, delay);
    this._emit("disconnected", { code: ev ? ev.code : 1006, reason: ev ? ev.reason : "", opened });
  }

  _heartbeat() {
    // A connection that does not answer a ping is dead even if TCP has not
    // noticed (a node lost its network): drop it and reconnect.
    this.ping().catch((err) => { if (err.code === "timeout") this.drop(); });
  }

  _write(frame) {
    if (this._ws && this._ws.readyState === OPEN) {
      this._ws.send(JSON.stringify(frame));
      return true;
    }
    return false;
  }

  /**
   * Sends a request frame and waits for its answer (the frame with its id as
   * `ref`).
   * @param {object} frame
   * @param {{timeoutMs?: number, replay?: boolean}} [opts] replay: send again after a reconnect
   * @returns {Promise<object>} the answering frame
   */
  _request(frame, opts = {}) {
    const id = "r" + this._nextId++;
    frame = typeof frame === "function" ? frame(id) : { ...frame, id };
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    return new Promise((resolve, reject) => {
      const p = { frame, resolve, reject, replay: !!opts.replay, timer: null };
      p.timer = setTimeout(() => this._settle(id, p, new SwitchboardError("timeout", `no answer to ${frame.type} within ${timeoutMs} ms`)), timeoutMs);
      this._pending.set(id, p);
      if (this.state === States.CLOSED) this._settle(id, p, new SwitchboardError("closed", "the client is not connected (call connect)"));
      else if (!this._write(frame) && !p.replay) this._settle(id, p, new SwitchboardError("disconnected", "the client is not connected now"));
    });
  }

  _settle(id, p, err, value) {
    if (!this._pending.delete(id)) return;
    clearTimeout(p.timer);
    if (err) p.reject(err);
    else p.resolve(value);
  }

  _frame(f) {
    if (f.ref != null && this._pending.has(f.ref)) {
      const p = this._pending.get(f.ref);
      if (f.type === "error") this._settle(f.ref, p, new SwitchboardError(f.error.code, f.error.message));
      else this._settle(f.ref, p, null, f);
    }
    switch (f.type) {
      case "subscribed": return this._subscribed(f);
      case "snapshot": return this._snapshot(f);
      case "update": return this._update(f);
      case "resync": return this._resync(f);
      case "watching":
        if (this.watches.has(f.conversation_id)) this._emit("watching", { conversation_id: f.conversation_id, version: f.version });
        return;
      case "item":
      case "typing":
      case "presence":
        if (this.watches.has(f.conversation_id)) this._emit(f.type, f);
        return;
      case "conversation":
        if (this.watches.has(f.conversation_id)) this._emit("summary", { conversation_id: f.conversation_id, conversation: f.conversation });
        return;
      case "error":
        if (f.ref == null) this._emit("error", { error: f.error });
        return;
    }
  }

  _subscribeFrame(inbox, st, id) {
    const frame = { type: "subscribe", id, inbox_id: inbox };
    if (st.filter) frame.filter = st.filter;
    if (st.epoch) frame.resume = { epoch: st.epoch, seq: st.seq };
    return frame;
  }

  _subscribeRequest(inbox, st) {
    const req = this._request((id) => {
      st.req = id;
      return this._subscribeFrame(inbox, st, id);
    }, { replay: true });
    req.catch((err) => {
      if (this._lost(err)) return;
      // The server refused it: that is final.
      if (this.inboxes.get(inbox) === st) this.inboxes.delete(inbox);
      this._emit("error", { error: { code: err.code, message: err.message }, inbox_id: inbox });
      this._inboxRestored(inbox, false);
    });
    return req;
  }

  _watchRequest(conv) {
    let reqId;
    const req = this._request((id) => {
      reqId = id;
      this.watches.set(conv, id);
      const frame = { type: "watch", id, conversation_id: conv };
      if (this._summaries.has(conv)) frame.summaries = true;
      return frame;
    }, { replay: true });
    req.id = reqId;
    req.catch((err) => {
      if (!this._lost(err) && this.watches.get(conv) === req.id) {
        this.watches.delete(conv);
        this._summaries.delete(conv);
      }
    });
    return req;
  }

  // _lost says whether a request failed for want of an answer rather than
  // by the server's refusal. Without an answer the connection is suspect:
  // it is dropped, and the reconnect asks again.
  _lost(err) {
    if (err.code === "closed") return true;
    if (err.code !== "timeout" && err.code !== "disconnected") return false;
    this.drop();
    return true;
  }

  _subscribed(f) {
    const st = this.inboxes.get(f.inbox_id);
    if (!st) return;
    st.epoch = f.epoch;
    st.seq = f.seq;
    // Not resumed: a snapshot follows, and _snapshot finishes the restore.
    if (f.resumed) this._inboxRestored(f.inbox_id, false);
  }

  _inboxRestored(inbox, resynced) {
    const r = this._restoring;
    if (!r || !r.waiting.has(inbox)) return;
    r.waiting.delete(inbox);
    r.resynced = r.resynced || resynced;
    if (r.waiting.size === 0) this._restored(this._everLive);
  }

  _snapshot(f) {
    const st = this.inboxes.get(f.inbox_id);
    if (!st) return;
    const old = st.conversations;
    st.conversations = new Map();
    for (const c of f.conversations) {
      const held = old.get(c.id);
      // The guard holds across a snapshot too: an ack may have brought a
      // newer summary than the page the snapshot was read from.
      st.conversations.set(c.id, held && held.version > c.version ? held : c);
    }
    st.epoch = f.epoch;
    st.seq = f.seq;
    st.counts = f.counts;
    st.total = f.total;
    const wasResync = st.resyncing;
    st.resyncing = false;
    this._emit("snapshot", { inbox_id: f.inbox_id, conversations: [...st.conversations.values()], counts: f.counts, total: f.total });
    if (this._restoring) this._inboxRestored(f.inbox_id, this._everLive);
    else if (wasResync) this._setState(States.RESYNCED);
  }

  _update(f) {
    const st = this.inboxes.get(f.inbox_id);
    if (!st) return;
    if (f.epoch === st.epoch && f.seq > st.seq) st.seq = f.seq;
    if (f.counts) {
      st.counts = f.counts;
      this._emit("counts", { inbox_id: f.inbox_id, counts: f.counts });
    }
    this._applyTo(st, f.conversation, f.counts);
  }

  _resync(f) {
    const st = this.inboxes.get(f.inbox_id);
    if (!st) return;
    st.resyncing = true;
    this._emit("resync", { inbox_id: f.inbox_id, reason: f.reason });
  }

  _applyTo(st, summary, counts) {
    const held = st.conversations.get(summary.id);
    if (held && held.version >= summary.version) return false;
    st.conversations.set(summary.id, summary);
    this._emit("conversation", { inbox_id: summary.inbox_id, conversation: summary, counts: counts || st.counts });
    return true;
  }

  /**
   * Applies a conversation summary obtained elsewhere (a REST answer, an
   * ack) through the version guard.
   * @param {object} summary
   * @returns {boolean} whether it was newer than the one held (and applied)
   */
  apply(summary) {
    const st = this.inboxes.get(summary.inbox_id);
    if (!st) return false;
    return this._applyTo(st, summary, null);
  }

  /**
   * The conversations held for an inbox (the snapshot page plus every
   * update since), newest version of each.
   * @param {string} inboxId
   * @returns {object[]}
   */
  conversations(inboxId) {
    const st = this.inboxes.get(inboxId);
    return st ? [...st.conversations.values()] : [];
  }

  /**
   * Subscribes to an inbox's live list. Resolves with the `subscribed`
   * frame; the `snapshot` event (the first page under the filter) follows,
   * then every change of the inbox, whatever the filter: a list kept by
   * the filter learns what joins and leaves it. Kept across reconnects.
   * @param {string} inboxId
   * @param {{filter?: object}} [opts] filter: the list query's keys (docs/api.md)
   * @returns {Promise<object>}
   */
  subscribe(inboxId, opts = {}) {
    const st = { filter: opts.filter, epoch: "", seq: 0, conversations: new Map(), counts: null, total: 0, resyncing: false, req: null };
    this.inboxes.set(inboxId, st);
    return this._subscribeRequest(inboxId, st);
  }

  /** Stops an inbox subscription. @param {string} inboxId */
  unsubscribe(inboxId) {
    const st = this.inboxes.get(inboxId);
    if (!st) return;
    this.inboxes.delete(inboxId);
    // A subscription still waiting for its answer (offline) must not be
    // sent again on the next connection.
    this._cancel(st.req);
    this._write({ type: "unsubscribe", inbox_id: inboxId });
  }

  /**
   * Watches a conversation: `item`, `typing` and `presence` events follow,
   * and with `{summaries: true}` a `summary` event after every change of
   * the conversation, whatever subscription holds it or not (the server's
   * extension of watch). Kept across reconnects (a `watching` event each
   * time).
   * @param {string} conversationId
   * @param {{summaries?: boolean}} [opts]
   * @returns {Promise<{conversation_id: string, version: number}>}
   */
  watch(conversationId, opts = {}) {
    if (opts.summaries) this._summaries.add(conversationId);
    else this._summaries.delete(conversationId);
    return this._watchRequest(conversationId);
  }

  /** Stops watching a conversation. @param {string} conversationId */
  unwatch(conversationId) {
    if (!this.watches.has(conversationId)) return;
    this._cancel(this.watches.get(conversationId));
    this.watches.delete(conversationId);
    this._summaries.delete(conversationId);
    this._write({ type: "unwatch", conversation_id: conversationId });
  }

  // _cancel fails a request still waiting for its answer with `cancelled`
  // and forgets it, so that a reconnect does not send it again.
  _cancel(id) {
    const p = this._pending.get(id);
    if (p) this._settle(id, p, new SwitchboardError("cancelled", "the request was withdrawn before its answer"));
  }

  /**
   * Sends a reply or an internal note. Survives a reconnect: without an
   * ack the frame is sent again under the same `client_id`, which the
   * server de-duplicates, until the timeout.
   * @param {string} conversationId
   * @param {string} body
   * @param {{kind?: "message"|"note", clientId?: string, ifVersion?: number, timeoutMs?: number}} [opts]
   * @returns {Promise<object>} the stored message
   */
  async send(conversationId, body, opts = {}) {
    const frame = { type: "send", conversation_id: conversationId, body, client_id: opts.clientId || randomId() };
    if (opts.kind) frame.kind = opts.kind;
    if (opts.ifVersion != null) frame.if_version = opts.ifVersion;
    const ack = await this._request(frame, { replay: true, timeoutMs: opts.timeoutMs });
    return ack.message;
  }

  /**
   * Changes a conversation (status, addressed, assignee_id, tags_add,
   * tags_remove, snooze_until, if_version — docs/api.md). The answer goes through
   * the version guard, so the caller's list shows it at once.
   * @param {string} conversationId
   * @param {object} changes
   * @param {{timeoutMs?: number}} [opts]
   * @returns {Promise<object>} the conversation summary after the change
   */
  async update(conversationId, changes, opts = {}) {
    const ack = await this._request({ ...changes, type: "update_conversation", conversation_id: conversationId }, opts);
    if (ack.conversation) this.apply(ack.conversation);
    return ack.conversation;
  }

  /**
   * Tells the conversation's other watchers that this agent is typing; at
   * most one frame per conversation every 2 s, however often it is called.
   * @param {string} conversationId
   */
  typing(conversationId) {
    const now = Date.now();
    if (now - (this._typingSent.get(conversationId) || 0) < 2000) return;
    this._typingSent.set(conversationId, now);
    this._write({ type: "typing", conversation_id: conversationId });
  }

  /** Round-trips a ping. @returns {Promise<void>} */
  async ping() {
    await this._request({ type: "ping" });
  }
}

function wsBase(url) {
  if (!url) {
    const loc = globalThis.location;
    if (!loc) throw new TypeError("Switchboard: url is required outside a browser");
    url = loc.origin;
  }
  return url.replace(/^http/, "ws").replace(/\/+$/, "") + "/v1/ws";
}

function randomId() {
  if (globalThis.crypto && globalThis.crypto.randomUUID) return globalThis.crypto.randomUUID();
  return Date.now().toString(36) + Math.random().toString(36).slice(2);
}
