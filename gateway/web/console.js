// The agent console, on switchboard.js: one websocket subscribed to the
// chosen inbox keeps the list live (the client's version guard means a stale
// summary never overwrites a fresh one); the open conversation is watched
// for its items, typing and presence; REST loads history, search and the
// agent directory.
import { Switchboard, States } from "/assets/switchboard.js";

const $ = (id) => document.getElementById(id);
const TABS = ["mine", "unassigned", "unaddressed", "all", "sla"];
const LIST_LIMIT = 200;

const ui = {
  token: sessionStorage.getItem("sb_agent_token") || "",
  sb: null,
  me: null, // this agent (GET /v1/me)
  agents: new Map(), // id → {id, name, status}: the colleagues of the inboxes seen so far
  inbox: "",
  tab: "all",
  sort: "recent",
  selected: "", // the open conversation
  summary: null, // its newest summary
  items: new Map(), // its timeline, id → item
  target: null, // a message to scroll to (from search)
  cursor: -1, // keyboard highlight in the list
  typing: new Map(), // agent id → timer
  presence: [],
  counts: null,
  total: 0,
  listPending: false, // a subscription's snapshot is on its way: keep the list as it is
  hasOlder: false, // the open thread has items older than those held
  sending: false,
  swallow: "", // a shortcut's key whose character must not land in the field it focused
};

async function api(path, opts = {}) {
  const res = await fetch(path, {
    ...opts,
    headers: { Authorization: "Bearer " + ui.token, "Content-Type": "application/json" },
    body: opts.body ? JSON.stringify(opts.body) : undefined,
  });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) {
    const err = new Error((body.error && body.error.message) || res.statusText);
    err.status = res.status;
    throw err;
  }
  return body;
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("data-") || k.startsWith("aria-") || k === "role" || k === "title" || k === "datetime" || k === "type" || k === "tabindex") e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) if (c != null) e.append(c);
  return e;
}

const who = (c) => (c && c.contact && (c.contact.name || c.contact.phone || c.contact.email || c.contact.handle)) || "Unknown contact";
const agentName = (id) => (ui.me && id === ui.me.id ? "me" : (ui.agents.get(id) || {}).name || id);

function ago(iso) {
  if (!iso) return "";
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (s < 60) return "now";
  if (s < 3600) return Math.floor(s / 60) + "m";
  if (s < 86400) return Math.floor(s / 3600) + "h";
  return Math.floor(s / 86400) + "d";
}
const clock = (iso) => new Date(iso).toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });

// ---- connection state ----------------------------------------------------

const STATE_TEXT = {
  [States.CONNECTING]: "connecting…", [States.LIVE]: "live", [States.RECONNECTING]: "reconnecting…",
  [States.RESUMED]: "live · resumed", [States.RESYNCED]: "live · resynced", [States.CLOSED]: "signed out",
};
function showState(state) {
  const s = $("status");
  s.textContent = STATE_TEXT[state] || state;
  s.dataset.state = state;
  s.className = "pill " + ([States.LIVE, States.RESUMED, States.RESYNCED].includes(state) ? "live" : state === States.CLOSED ? "" : "down");
}

// ---- sign-in -------------------------------------------------------------

async function signIn(token) {
  if (ui.sb) { ui.sb.close(); ui.sb = null; }
  ui.token = token;
  const { agent } = await api("/v1/me");
  if (!agent) throw new Error("this is an account API key; the console signs in with an agent token");
  const { inboxes } = await api("/v1/inboxes");
  sessionStorage.setItem("sb_agent_token", token);
  ui.me = agent;
  ui.agents.clear();
  ui.agents.set(agent.id, agent);
  $("login").hidden = true;
  $("app").hidden = false;
  $("signout").hidden = $("help-btn").hidden = false;
  $("me").textContent = agent.name;
  const sel = $("inbox");
  sel.replaceChildren(...inboxes.map((ib) => el("option", { value: ib.id, text: ib.name })));
  // Reconnects are quick: an agent waits on this page while a node restarts.
  ui.sb = new Switchboard({ token, maxBackoffMs: 3000 });
  ui.sb.on("state", ({ state }) => showState(state));
  // Closed by the server as revoked (1008), or dropped after it was open:
  // ask now; a failed attempt to reconnect: ask now and then.
  ui.sb.on("disconnected", ({ code, opened }) => checkCredentials(code === 1008 || opened));
  ui.sb.on("snapshot", (s) => {
    if (s.inbox_id !== ui.inbox) return;
    ui.counts = s.counts;
    ui.total = s.total;
    ui.listPending = false;
    // After a reconnect the open conversation may have changed unseen.
    const open = s.conversations.find((c) => c.id === ui.selected);
    if (open) showSummary(open);
    else if (ui.selected) refreshSummary(ui.selected);
    renderList();
  });
  // Counts render on their own: when this console's own change was acked
  // first, the update that carries the new counts brings no newer summary,
  // so no "conversation" event would render them.
  ui.sb.on("counts", (c) => { if (c.inbox_id === ui.inbox) { ui.counts = c.counts; renderCounts(); } });
  ui.sb.on("conversation", ({ conversation }) => {
    if (conversation.id === ui.selected) showSummary(conversation);
    if (conversation.inbox_id === ui.inbox) scheduleList();
  });
  ui.sb.on("watching", ({ conversation_id, version }) => {
    if (conversation_id !== ui.selected) return;
    if (!ui.summary || version > ui.summary.version) refreshSummary(conversation_id);
    loadHistory().catch(threadError);
  });
  ui.sb.on("summary", ({ conversation }) => showSummary(conversation));
  ui.sb.on("item", ({ conversation_id, item }) => {
    if (conversation_id !== ui.selected) return;
    ui.items.set(item.id, newer(ui.items.get(item.id), item));
    renderMessages();
  });
  ui.sb.on("typing", ({ conversation_id, agent_id }) => { if (conversation_id === ui.selected) showTyping(agent_id); });
  ui.sb.on("presence", ({ conversation_id, agents }) => {
    if (conversation_id !== ui.selected) return;
    ui.presence = agents;
    renderPresence();
  });
  ui.sb.on("error", ({ error }) => console.warn("switchboard:", error));
  ui.sb.connect();
  if (inboxes.length) switchInbox(inboxes[0].id);
  else $("list-more").textContent = "You are not a member of any inbox yet: ask your account's owner to add you to one.";
}

// checkCredentials asks the REST API whether the token still works after
// the websocket closed or failed to open (a browser cannot see the 401 of a
// refused upgrade): a revoked token or a deleted agent signs out with a
// reason instead of reconnecting for ever.
let checking = false;
let checkedAt = 0;
async function checkCredentials(urgent) {
  // While a node is down every attempt fails: ask at most every 10 s then.
  if (checking || !ui.sb || (!urgent && Date.now() - checkedAt < 10000)) return;
  checking = true;
  checkedAt = Date.now();
  try {
    await api("/v1/me");
  } catch (err) {
    if (err.status === 401) signOut("Signed out: this token no longer works (revoked, or the agent was deleted).");
  } finally {
    checking = false;
  }
}

// loadColleagues names the agents of an inbox (GET /v1/inboxes/{id}/agents).
async function loadColleagues(inboxId) {
  try {
    const { agents } = await api(`/v1/inboxes/${encodeURIComponent(inboxId)}/agents`);
    if (!ui.sb) return; // signed out meanwhile
    for (const a of agents) ui.agents.set(a.id, a);
  } catch {
    return; // names are a convenience: ids still work
  }
  renderAgentChoices();
  renderList();
  renderThreadHead();
  renderPresence();
}

function renderAgentChoices() {
  $("agents").replaceChildren(...[...ui.agents.values()].map((a) => el("option", { value: a.id, text: a.name })));
}

// signOut shows the sign-in form again, with the reason when the server
// ended the session. In place, not by reloading: a reload would lose the
// reason, and the page holds nothing else worth a reload.
function signOut(reason = "") {
  sessionStorage.removeItem("sb_agent_token");
  if (ui.sb) ui.sb.close();
  Object.assign(ui, { token: "", sb: null, me: null, inbox: "", selected: "", summary: null, target: null, cursor: -1, presence: [], counts: null, total: 0, listPending: false, hasOlder: false });
  ui.agents.clear();
  ui.items.clear();
  $("app").hidden = true;
  $("signout").hidden = $("help-btn").hidden = true;
  $("me").textContent = "";
  $("conversations").replaceChildren();
  $("search").value = $("reply").value = $("assignee").value = $("tag").value = "";
  $("search-results").replaceChildren();
  $("search-panel").hidden = true;
  $("typing").textContent = "";
  $("thread-body").hidden = true;
  $("thread-empty").hidden = false;
  $("login").hidden = false;
  $("login-error").textContent = reason;
  $("token").value = "";
  $("token").focus();
  showState(States.CLOSED);
}

function switchInbox(id) {
  ui.inbox = id;
  ui.counts = null;
  subscribeList();
  loadColleagues(id);
}

// subscribeList (re)subscribes to the inbox with the tab's filter and the
// chosen sort, so that the server's first page is the right 200 however
// many conversations the inbox holds; updates keep it live from there.
function subscribeList() {
  const f = { limit: LIST_LIMIT, sort: ui.tab === "sla" ? "sla_due" : ui.sort };
  if (ui.tab === "mine") f.assignee = "me";
  if (ui.tab === "unassigned") f.assignee = "none";
  if (ui.tab === "unaddressed") f.addressed = false;
  for (const inbox of [...ui.sb.inboxes.keys()]) ui.sb.unsubscribe(inbox);
  ui.listPending = true;
  const inbox = ui.inbox;
  ui.sb.subscribe(inbox, { filter: f }).catch((err) => {
    if (err.code === "cancelled" || inbox !== ui.inbox) return; // another tab or sort took over
    ui.listPending = false;
    $("list-more").textContent = "Could not load the list: " + err.message;
  });
}

// ---- the list ------------------------------------------------------------

const byTab = {
  mine: (c) => ui.me && c.assignee_id === ui.me.id,
  unassigned: (c) => !c.assignee_id,
  unaddressed: (c) => !c.addressed,
  all: () => true,
  sla: (c) => c.sla_breached,
};
const cmp = (a, b) => (a < b ? -1 : a > b ? 1 : 0);
const nullsLast = (a, b) => (a == null ? (b == null ? 0 : 1) : b == null ? -1 : cmp(a, b));
const bySort = {
  recent: (a, b) => cmp(b.last_activity_at, a.last_activity_at),
  oldest: (a, b) => cmp(a.last_activity_at, b.last_activity_at),
  longest_wait: (a, b) => nullsLast(a.waiting_since, b.waiting_since),
  sla_due: (a, b) => nullsLast(a.sla_due_at, b.sla_due_at),
};

function visible() {
  return ui.sb.conversations(ui.inbox)
    .filter((c) => c.status !== "closed" && byTab[ui.tab](c))
    .sort((a, b) => bySort[ui.sort](a, b) || cmp(a.id, b.id));
}

// Bursts of updates render once per frame.
let listQueued = false;
function scheduleList() {
  if (listQueued) return;
  listQueued = true;
  requestAnimationFrame(() => { listQueued = false; renderList(); });
}

// A preview says who wrote the newest item: the team's replies and notes
// are marked, the contact's words are not.
const PREFIX = (m) => (m.kind === "note" ? "Note: " : m.direction === "outbound" ? "Team: " : "");

function renderList() {
  if (!ui.sb) return; // signed out: a late answer or frame has no list to draw
  renderCounts();
  if (ui.listPending) return; // the new subscription's snapshot redraws it
  const list = visible();
  const hadFocus = $("conversations").contains(document.activeElement) ? document.activeElement.closest("li")?.dataset.conversationId : null;
  $("conversations").replaceChildren(...list.map((c, i) => {
    const badges = [el("span", { class: "badge status-" + c.status, text: c.status })];
    if (c.active_call) badges.push(el("span", { class: "badge call", text: "call " + c.active_call.state }));
    if (c.sla_breached) badges.push(el("span", { class: "badge sla", text: "SLA" }));
    if (c.assignee_id) badges.push(el("span", { class: "badge", text: "→ " + agentName(c.assignee_id) }));
    for (const t of c.tags || []) badges.push(el("span", { class: "badge tag", text: "#" + t }));
    const li = el("li", {
      "data-testid": "conversation-item", "data-conversation-id": c.id, "data-id": c.id, "data-version": c.version,
      class: [c.addressed ? "" : "unaddressed", c.id === ui.selected ? "selected" : "", i === ui.cursor ? "cursor" : ""].join(" "),
    },
    el("button", { type: "button", class: "conv", "aria-current": c.id === ui.selected ? "true" : null,
      "aria-label": `${who(c)}, ${c.status}${c.addressed ? "" : ", waiting for a reply"}: ${c.last_message ? c.last_message.body : "no messages"}` },
    el("span", { class: "who" }, who(c), el("time", { datetime: c.last_activity_at, text: ago(c.last_activity_at), title: clock(c.last_activity_at) })),
    el("span", { class: "preview", text: c.last_message ? PREFIX(c.last_message) + c.last_message.body : "" }),
    el("span", { class: "badges" }, ...badges)));
    return li;
  }));
  if (hadFocus) document.querySelector(`#conversations li[data-conversation-id="${CSS.escape(hadFocus)}"] button`)?.focus();
  // The SLA tab's page is every open conversation by due time; its total
  // is the breached count.
  const held = ui.sb.conversations(ui.inbox).length;
  const total = ui.tab === "sla" ? (ui.counts ? ui.counts.sla_breached : 0) : ui.total;
  $("list-more").textContent = total > list.length && ui.total > held ? `Showing the first ${list.length} of ${total}; search finds the rest.` : "";
  if (list.length === 0) $("list-more").textContent = "Nothing here.";
}

function renderCounts() {
  const c = ui.counts;
  for (const b of document.querySelectorAll("[data-count]")) {
    const k = b.dataset.count;
    b.textContent = !c ? "·" : k === "all" ? (c.new || 0) + (c.open || 0) + (c.pending || 0) : c[k] ?? 0;
  }
  for (const t of document.querySelectorAll("[data-tab]")) t.setAttribute("aria-selected", String(t.dataset.tab === ui.tab));
}

function setTab(tab) {
  ui.tab = tab;
  renderCounts();
  if (!ui.inbox) return; // no inbox: the page says so, and there is no list to fetch
  ui.cursor = -1;
  renderList(); // at once from what is held, then from the server's page
  if (!visible().length) $("list-more").textContent = "Loading…";
  if (![States.LIVE, States.RESUMED, States.RESYNCED].includes(ui.sb.state)) $("list-more").textContent = "Offline: this list is refreshed when the connection is back.";
  subscribeList();
}

// ---- the thread ----------------------------------------------------------

async function select(id, target = null) {
  if (ui.selected && ui.selected !== id) ui.sb.unwatch(ui.selected);
  const changed = ui.selected !== id;
  ui.selected = id;
  ui.target = target;
  ui.presence = [];
  if (changed) ui.items.clear();
  ui.summary = ui.sb.conversations(ui.inbox).find((c) => c.id === id) || null;
  $("thread-empty").hidden = true;
  $("thread-body").hidden = false;
  $("reply-error").textContent = "";
  if (changed) { ui.hasOlder = false; renderMessages(); }
  if (!ui.summary) await refreshSummary(id);
  renderThreadHead();
  renderPresence();
  renderList();
  // Summaries keep the header current when no tab's subscription holds
  // the conversation (a filtered tab it left, a search hit, another inbox).
  if (changed) ui.sb.watch(id, { summaries: true }).catch((err) => console.warn("watch:", err.message));
  await loadHistory().catch(threadError);
}

// refreshSummary reads the conversation over REST (one not in the list: a
// closed one opened from search; or after a reconnect).
async function refreshSummary(id) {
  try {
    showSummary(await api(`/v1/conversations/${encodeURIComponent(id)}`));
  } catch (err) {
    if (id === ui.selected) threadError(err);
  }
}

// showSummary shows a summary in the open thread's header unless an older one.
function showSummary(c) {
  if (c.id !== ui.selected || (ui.summary && ui.summary.id === c.id && c.version < ui.summary.version)) return;
  ui.summary = c;
  renderThreadHead();
}

function threadError(err) {
  $("reply-error").textContent = "Could not load the conversation: " + err.message;
}

// loadHistory reads the newest page of the timeline (and further back until
// a search target is in it).
async function loadHistory() {
  const id = ui.selected;
  let before = null;
  for (let page = 0; page < 10; page++) {
    const next = await loadPage(id, before);
    if (next === undefined) return; // the agent moved on
    if (!ui.target || ui.items.has(ui.target.message_id) || next === null) break;
    before = next;
  }
  renderMessages();
}

const oldestSeq = () => Math.min(...[...ui.items.values()].map((m) => m.seq));

// loadPage reads one page of the timeline into the thread: the next page's
// before, null when this one was the oldest, undefined when id is no longer
// open. A page that reaches further back than what is held says whether
// there is more (a newest page read again after a reconnect does not).
async function loadPage(id, before) {
  const q = before ? `&before=${before}` : "";
  const { messages, next_before } = await api(`/v1/conversations/${encodeURIComponent(id)}/messages?limit=50${q}`);
  if (id !== ui.selected) return undefined;
  const oldest = oldestSeq();
  for (const m of messages) ui.items.set(m.id, newer(ui.items.get(m.id), m));
  const last = messages[messages.length - 1];
  if (oldest === Infinity || (last && last.seq < oldest) || (before !== null && before <= oldest)) ui.hasOlder = next_before !== null;
  return next_before;
}

async function loadOlder() {
  const id = ui.selected;
  if (!id || !ui.hasOlder) return;
  const box = $("messages");
  const fromBottom = box.scrollHeight - box.scrollTop;
  try {
    if ((await loadPage(id, oldestSeq())) !== undefined) renderMessages({ keep: fromBottom });
  } catch (err) {
    threadError(err);
  }
}

// Items change in place (a call through its states, a reply through its
// delivery status) and only forward; a page read before an item frame
// arrived must not undo it.
const RANK = { pending: 0, queued: 1, sent: 2, delivered: 3, failed: 3, undelivered: 3, ringing: 0, in_progress: 1, completed: 2, missed: 2, voicemail: 2 };
const rank = (m) => RANK[m.kind === "call" ? m.state : m.status] ?? 0;
const newer = (held, m) => (held && rank(held) > rank(m) ? held : m);
const TICKS = { pending: "◷", queued: "✓", sent: "✓", delivered: "✓✓", failed: "✕", undelivered: "✕" };

function renderThreadHead() {
  const c = ui.summary;
  if (!c) return;
  $("thread-title").textContent = who(c);
  $("thread-status").textContent = c.status;
  $("thread-status").className = "badge status-" + c.status;
  $("thread-call").hidden = !c.active_call;
  if (c.active_call) $("thread-call").textContent = "call " + c.active_call.state;
  $("close-btn").hidden = c.status === "closed";
  $("reopen-btn").hidden = c.status !== "closed";
  const meta = [];
  meta.push(el("span", { text: c.assignee_id ? "Assigned to " + agentName(c.assignee_id) : "Unassigned", "data-assignee": c.assignee_id || "" }));
  if (c.snooze_until) meta.push(el("span", { text: "Snoozed until " + clock(c.snooze_until) }));
  if (c.sla_due_at) meta.push(el("span", { class: c.sla_breached ? "error" : "", text: (c.sla_breached ? "SLA breached, was due " : "SLA due ") + clock(c.sla_due_at) }));
  if (c.contact && c.contact.opted_out) meta.push(el("span", { class: "error", text: "Opted out of SMS" }));
  const tags = el("span", { class: "tags", "aria-label": "Tags" }, ...(c.tags || []).map((t) =>
    el("span", { class: "badge tag" }, "#" + t, el("button", { type: "button", class: "untag", "data-tag": t, "aria-label": "Remove tag " + t, text: "×" }))));
  meta.push(tags);
  $("thread-meta").replaceChildren(...meta);
}

function renderMessages({ keep = 0 } = {}) {
  const items = [...ui.items.values()].sort((a, b) => a.seq - b.seq);
  const box = $("messages");
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  $("load-older").hidden = !ui.hasOlder;
  box.replaceChildren(...items.map((m) => {
    const kind = m.kind || "message";
    const head = [];
    if (kind === "note") head.push(el("span", { class: "label", text: "Internal note" }));
    else if (kind === "call") head.push(el("span", { class: "label", text: "Call" }));
    else head.push(el("span", { class: "label", text: m.direction === "outbound" ? "Team" : who(ui.summary) }));
    head.push(el("time", { datetime: m.created_at, text: clock(m.created_at) }));
    let body;
    if (kind === "call") {
      body = el("span", { text: `${m.state}${m.duration_s ? ` · ${m.duration_s}s` : ""}` });
      if (m.recording_url) body.append(" · ", el("a", { href: m.recording_url, text: "recording", rel: "noreferrer" }));
    } else body = el("span", { class: "text", text: m.body });
    const li = el("li", { class: `${m.direction || ""} ${kind}${ui.target && ui.target.message_id === m.id ? " hit" : ""}`, "data-id": m.id, "data-seq": m.seq },
      el("div", { class: "head" }, ...head), body);
    if (kind === "message" && m.direction === "outbound" && m.status) {
      li.append(el("span", { class: "tick status-" + m.status, "data-status": m.status, title: m.status, "aria-label": "Delivery: " + m.status },
        TICKS[m.status] || "", el("span", { class: "sr-only", text: " " + m.status })));
      li.dataset.status = m.status;
    }
    return li;
  }));
  const hit = ui.target && box.querySelector(`li[data-id="${CSS.escape(ui.target.message_id)}"]`);
  if (keep) box.scrollTop = box.scrollHeight - keep; // older items went in above what the agent reads
  else if (hit) hit.scrollIntoView({ block: "center" });
  else if (atBottom || items.length < 60) box.scrollTop = box.scrollHeight;
}

function showTyping(agentId) {
  clearTimeout(ui.typing.get(agentId));
  ui.typing.set(agentId, setTimeout(() => { ui.typing.delete(agentId); renderTyping(); }, 4000));
  renderTyping();
}
function renderTyping() {
  const names = [...ui.typing.keys()].map(agentName);
  $("typing").textContent = names.length ? names.join(", ") + (names.length > 1 ? " are" : " is") + " typing…" : "";
}
function renderPresence() {
  const others = ui.presence.filter((id) => !ui.me || id !== ui.me.id);
  $("thread-presence").textContent = others.length ? "Also viewing: " + others.map(agentName).join(", ") : "";
  $("thread-presence").dataset.agents = ui.presence.join(",");
}

// ---- actions -------------------------------------------------------------

async function act(changes) {
  const id = ui.selected;
  if (!id) return;
  $("reply-error").textContent = "";
  try {
    const c = await ui.sb.update(id, changes);
    // The agent may have opened another conversation while this one's ack
    // was on its way: its answer must not replace that thread's header.
    if (c) showSummary(c);
    renderList();
  } catch (err) {
    if (id === ui.selected) $("reply-error").textContent = err.message;
  }
}

async function sendReply() {
  const body = $("reply").value;
  // One click, one message: a second click while the first is on its way
  // would send the text twice.
  if (!body.trim() || !ui.selected || ui.sending) return;
  const kind = document.querySelector('input[name="kind"]:checked').value;
  $("reply-error").textContent = "";
  const id = ui.selected;
  ui.sending = true;
  $("reply-send").disabled = true;
  try {
    const m = await ui.sb.send(id, body, { kind });
    if ($("reply").value === body) $("reply").value = "";
    if (id !== ui.selected) return; // the agent moved on: that thread loads it when opened
    ui.items.set(m.id, m);
    renderMessages();
  } catch (err) {
    if (id === ui.selected) $("reply-error").textContent = "Not sent: " + err.message;
  } finally {
    ui.sending = false;
    $("reply-send").disabled = false;
  }
}

async function search(q) {
  const panel = $("search-panel");
  if (!q.trim()) { panel.hidden = true; return; }
  panel.hidden = false;
  $("search-summary").textContent = "Searching…";
  try {
    const { hits, found } = await api(`/v1/search?q=${encodeURIComponent(q)}&inbox_id=${encodeURIComponent(ui.inbox)}&limit=20`);
    $("search-summary").textContent = `${found} found`;
    $("search-results").replaceChildren(...hits.map((h) => {
      const snippet = el("span", { class: "snippet" });
      // The snippet is the server's escaped text with <mark> around the
      // match; keep only those tags.
      snippet.innerHTML = String(h.snippet || "").replace(/<(?!\/?mark>)[^>]*>/g, "");
      if (!snippet.textContent) snippet.textContent = h.body;
      return el("li", { "data-conversation-id": h.conversation_id, "data-message-id": h.message_id },
        el("button", { type: "button", class: "conv", "aria-label": `Open the conversation at: ${h.body}` },
          snippet, el("time", { datetime: h.created_at, text: clock(h.created_at) })));
    }));
  } catch (err) {
    $("search-summary").textContent = "Search failed: " + err.message;
  }
}

// ---- wiring --------------------------------------------------------------

$("login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const button = $("login-form").querySelector("button[type=submit]");
  if (button.disabled) return; // a sign-in is on its way
  $("login-error").textContent = "";
  button.disabled = true;
  try {
    await signIn($("token").value.trim());
  } catch (err) {
    $("login-error").textContent = "Sign-in failed: " + err.message;
  } finally {
    button.disabled = false;
  }
});
$("signout").addEventListener("click", () => signOut());
$("help-btn").addEventListener("click", () => $("help").showModal());
$("inbox").addEventListener("change", (e) => switchInbox(e.target.value));
$("sort").addEventListener("change", (e) => { ui.sort = e.target.value; renderList(); subscribeList(); });
$("load-older").addEventListener("click", loadOlder);
$("tabs").addEventListener("click", (e) => { const b = e.target.closest("[data-tab]"); if (b) setTab(b.dataset.tab); });
$("conversations").addEventListener("click", (e) => { const li = e.target.closest("li"); if (li) select(li.dataset.conversationId); });
$("search-form").addEventListener("submit", (e) => { e.preventDefault(); search($("search").value); });
$("search-clear").addEventListener("click", () => { $("search").value = ""; $("search-panel").hidden = true; });
$("search-results").addEventListener("click", (e) => {
  const li = e.target.closest("li");
  if (!li) return;
  select(li.dataset.conversationId, { message_id: li.dataset.messageId });
});
$("reply-form").addEventListener("submit", (e) => { e.preventDefault(); sendReply(); });
$("reply").addEventListener("input", () => { if (ui.selected) ui.sb.typing(ui.selected); });
$("reply").addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); sendReply(); } });
$("assign-me").addEventListener("click", () => ui.me && act({ assignee_id: ui.me.id }));
$("unassign").addEventListener("click", () => act({ assignee_id: null }));
$("assign-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const id = $("assignee").value.trim();
  if (id) act({ assignee_id: id }).then(() => { $("assignee").value = ""; });
});
$("tag-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const t = $("tag").value.trim();
  if (t) act({ tags_add: [t] }).then(() => { $("tag").value = ""; });
});
$("thread-meta").addEventListener("click", (e) => { const b = e.target.closest(".untag"); if (b) act({ tags_remove: [b.dataset.tag] }); });
$("close-btn").addEventListener("click", () => act({ status: "closed" }));
$("reopen-btn").addEventListener("click", () => act({ status: "open" }));
$("snooze").addEventListener("change", (e) => {
  const s = Number(e.target.value);
  e.target.value = "";
  if (s) act({ status: "pending", snooze_until: new Date(Date.now() + s * 1000).toISOString() });
});

// Keyboard shortcuts, outside text boxes only.
document.addEventListener("keydown", (e) => {
  ui.swallow = "";
  if ($("app").hidden || e.ctrlKey || e.metaKey || e.altKey) return;
  const typingInField = e.target.closest("input, textarea, select");
  if (e.key === "Escape") { if (typingInField) e.target.blur(); return; }
  if (typingInField || $("help").open || (e.key === "Enter" && e.target.closest("button"))) return;
  const list = visible();
  const move = (d) => {
    ui.cursor = Math.max(0, Math.min(list.length - 1, (ui.cursor < 0 ? list.findIndex((c) => c.id === ui.selected) : ui.cursor) + d));
    renderList();
    document.querySelector("#conversations li.cursor button")?.focus();
  };
  const keys = {
    "/": () => $("search").focus(),
    j: () => move(1),
    k: () => move(-1),
    Enter: () => { if (list[ui.cursor]) select(list[ui.cursor].id); },
    r: () => { document.querySelector('input[name="kind"][value="message"]').checked = true; $("reply").focus(); },
    n: () => { document.querySelector('input[name="kind"][value="note"]').checked = true; $("reply").focus(); },
    a: () => ui.me && act({ assignee_id: ui.me.id }),
    c: () => ui.summary && act({ status: ui.summary.status === "closed" ? "open" : "closed" }),
    "?": () => $("help").showModal(),
  };
  TABS.forEach((t, i) => { keys[String(i + 1)] = () => setTab(t); });
  const f = keys[e.key];
  if (f) {
    e.preventDefault();
    f();
    // A key whose default was prevented types nothing, but a keyboard
    // driven without keydown's default (some automation sends the
    // character apart) would type it into the field just focused.
    if (e.target !== document.activeElement) ui.swallow = e.key;
  }
});
document.addEventListener("keypress", (e) => {
  if (ui.swallow && e.key === ui.swallow) e.preventDefault();
  ui.swallow = "";
}, true);

// Relative times in the list age without updates.
setInterval(() => { if (ui.sb && !$("app").hidden) scheduleList(); }, 30000);

if (ui.token) signIn(ui.token).catch(() => sessionStorage.removeItem("sb_agent_token"));
