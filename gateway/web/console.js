// The agent console: one websocket, one subscribed inbox, live list, and the
// selected conversation's timeline. It keeps the newest version of every
// conversation and ignores anything older (stale never overwrites fresh).
"use strict";
const $ = (id) => document.getElementById(id);
const state = { token: sessionStorage.getItem("sb_agent_token") || "", ws: null, inbox: "", epoch: "", seq: 0,
  convs: new Map(), selected: "", items: new Map(), nextId: 1, pending: new Map(), retry: 500 };

async function api(path, opts = {}) {
  const res = await fetch(path, { ...opts, headers: { "Authorization": "Bearer " + state.token, "Content-Type": "application/json" } });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error((body.error && body.error.message) || res.statusText);
  return body;
}

function setStatus(text, cls) { const s = $("status"); s.textContent = text; s.className = "pill " + (cls || ""); }

async function signIn(token) {
  state.token = token;
  const { inboxes } = await api("/v1/inboxes");
  sessionStorage.setItem("sb_agent_token", token);
  $("login").hidden = true; $("app").hidden = false;
  const sel = $("inbox"); sel.innerHTML = "";
  for (const ib of inboxes) { const o = document.createElement("option"); o.value = ib.id; o.textContent = ib.name; sel.appendChild(o); }
  if (inboxes.length) { state.inbox = inboxes[0].id; connect(); }
}

function send(frame) {
  frame.id = String(state.nextId++);
  if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify(frame));
  return frame.id;
}

function connect() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(proto + "//" + location.host + "/v1/ws?access_token=" + encodeURIComponent(state.token));
  state.ws = ws;
  ws.onopen = () => { setStatus("live", "live"); state.retry = 500; subscribe(); if (state.selected) send({ type: "watch", conversation_id: state.selected }); };
  ws.onmessage = (ev) => handle(JSON.parse(ev.data));
  ws.onclose = () => { setStatus("reconnecting…", "down"); setTimeout(connect, state.retry); state.retry = Math.min(state.retry * 2, 10000); };
}

function subscribe() {
  const frame = { type: "subscribe", inbox_id: state.inbox };
  if (state.epoch) frame.resume = { epoch: state.epoch, seq: state.seq };
  send(frame);
}

function apply(summary) {
  const held = state.convs.get(summary.id);
  if (held && held.version >= summary.version) return;
  state.convs.set(summary.id, summary);
}

function handle(f) {
  switch (f.type) {
    case "subscribed": state.epoch = f.epoch; state.seq = f.seq; break;
    case "snapshot":
      state.convs.clear(); state.epoch = f.epoch; state.seq = f.seq;
      for (const c of f.conversations) apply(c);
      renderCounts(f.counts); renderList(); break;
    case "update":
      if (f.inbox_id !== state.inbox) return;
      state.seq = f.seq; apply(f.conversation); renderCounts(f.counts); renderList(); break;
    case "resync": state.epoch = ""; break;
    case "item":
      if (f.conversation_id === state.selected) { state.items.set(f.item.id, f.item); renderThread(); }
      break;
    case "ack": if (state.pending.has(f.ref)) { state.pending.get(f.ref)(f); state.pending.delete(f.ref); } break;
    case "error": console.warn("switchboard:", f.error); if (state.pending.has(f.ref)) { state.pending.delete(f.ref); alert(f.error.message); } break;
  }
}

function renderCounts(c) {
  if (!c) return;
  $("counts").innerHTML = ["new", "open", "pending", "unaddressed", "unassigned", "mine"]
    .map((k) => `<span>${k} <b>${c[k] ?? 0}</b></span>`).join("");
}

function text(s) { const d = document.createElement("div"); d.textContent = s == null ? "" : String(s); return d.innerHTML; }

function renderList() {
  const list = [...state.convs.values()].filter((c) => c.status !== "closed")
    .sort((a, b) => (b.last_activity_at > a.last_activity_at ? 1 : b.last_activity_at < a.last_activity_at ? -1 : a.id.localeCompare(b.id)));
  $("conversations").innerHTML = list.map((c) => {
    const who = c.contact.name || c.contact.phone || c.contact.email || c.contact.handle;
    const call = c.active_call ? `<span class="badge call">${text(c.active_call.state)}</span>` : "";
    const last = c.last_message ? c.last_message.body : "";
    return `<li data-id="${text(c.id)}" data-version="${c.version}" class="${c.addressed ? "" : "unaddressed"} ${c.id === state.selected ? "selected" : ""}">
      <div class="who">${text(who)}<span class="badge">${text(c.status)}</span>${call}</div>
      <div class="preview">${text(last)}</div></li>`;
  }).join("");
}

async function select(id) {
  if (state.selected && state.selected !== id) send({ type: "unwatch", conversation_id: state.selected });
  state.selected = id; state.items.clear();
  const c = state.convs.get(id);
  $("thread-title").textContent = c ? (c.contact.name || c.contact.phone || c.contact.email || c.contact.handle) : id;
  $("reply-form").hidden = false;
  send({ type: "watch", conversation_id: id });
  const { messages } = await api(`/v1/conversations/${encodeURIComponent(id)}/messages?limit=50`);
  for (const m of messages) state.items.set(m.id, m);
  renderThread(); renderList();
}

function renderThread() {
  const items = [...state.items.values()].sort((a, b) => a.seq - b.seq);
  $("messages").innerHTML = items.map((m) => `<li class="${m.direction} ${m.kind}">${text(m.body)}</li>`).join("");
  $("messages").scrollTop = 1e9;
}

$("login-form").addEventListener("submit", async (e) => {
  e.preventDefault(); $("login-error").textContent = "";
  try { await signIn($("token").value.trim()); } catch (err) { $("login-error").textContent = "Sign-in failed: " + err.message; }
});
$("inbox").addEventListener("change", (e) => {
  if (state.inbox) send({ type: "unsubscribe", inbox_id: state.inbox });
  state.inbox = e.target.value; state.epoch = ""; state.convs.clear(); subscribe();
});
$("conversations").addEventListener("click", (e) => { const li = e.target.closest("li"); if (li) select(li.dataset.id); });
$("reply-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const body = $("reply").value.trim(); if (!body || !state.selected) return;
  const ref = send({ type: "send", conversation_id: state.selected, body, client_id: crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) });
  state.pending.set(ref, (ack) => { $("reply").value = ""; state.items.set(ack.message.id, ack.message); renderThread(); });
});
$("close-btn").addEventListener("click", () => {
  if (state.selected) send({ type: "update_conversation", conversation_id: state.selected, status: "closed" });
});
if (state.token) signIn(state.token).catch(() => sessionStorage.removeItem("sb_agent_token"));
