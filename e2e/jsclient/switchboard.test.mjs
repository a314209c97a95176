// Tests of gateway/web/switchboard.js against a real node. The Go test
// TestJSClient (e2e/jsclient_test.go) starts the node and runs this file
// with `node --test`, passing the node's URL and credentials:
//   SB_URL, SB_KEY (account key), SB_INBOX, SB_TOKEN and SB_TOKEN2 (two agents of the inbox).
import { test } from "node:test";
import assert from "node:assert/strict";
import { Switchboard, States, SwitchboardError } from "../../gateway/web/switchboard.js";

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set: run this through go test ./e2e -run TestJSClient`);
  return v;
};
const URL_ = env("SB_URL"), KEY = env("SB_KEY"), INBOX = env("SB_INBOX");
const TOKEN = env("SB_TOKEN"), TOKEN2 = env("SB_TOKEN2");

if (!globalThis.WebSocket) throw new Error("no global WebSocket: run node with --experimental-websocket");

let phone = 0;
const nextPhone = () => "+1415666" + String(1000 + (process.pid % 5000) + phone++).padStart(4, "0");

async function rest(method, path, body, token = KEY) {
  const res = await fetch(URL_ + path, {
    method, headers: { Authorization: "Bearer " + token, "Content-Type": "application/json" },
    body: body ? JSON.stringify(body) : undefined,
  });
  const json = await res.json().catch(() => null);
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}
const inbound = (body, p = nextPhone()) => rest("POST", `/v1/inboxes/${INBOX}/messages`, { contact: { phone: p }, body });

// until resolves when pred() holds, checking after every event of sb.
function until(sb, pred, what, ms = 5000) {
  return new Promise((resolve, reject) => {
    const offs = [];
    const done = (err) => { clearTimeout(timer); offs.forEach((f) => f()); err ? reject(err) : resolve(); };
    const check = () => { try { if (pred()) done(); } catch (err) { done(err); } };
    const timer = setTimeout(() => done(new Error("timed out waiting for " + (typeof what === "function" ? what() : what))), ms);
    for (const t of ["state", "snapshot", "conversation", "counts", "item", "typing", "presence", "watching", "resync", "summary"]) offs.push(sb.on(t, check));
    check();
  });
}

// Gate is a WebSocket whose connections can be refused while the gate is
// shut (a network outage the test controls) and whose outgoing frames can
// be filtered (an answer that never comes).
function gated() {
  const g = { open: true, drop: () => false, opened: 0 };
  g.WebSocket = class extends WebSocket {
    constructor(url) {
      super(g.open ? url : "ws://127.0.0.1:1/v1/ws");
      if (g.open) g.opened++;
    }
    send(data) { if (!g.drop(JSON.parse(data))) super.send(data); }
  };
  return g;
}

function client(t, opts = {}) {
  const sb = new Switchboard({ url: URL_, token: TOKEN, backoffMs: 50, maxBackoffMs: 200, ...opts });
  const states = [];
  sb.on("state", ({ state }) => states.push(state));
  t.after(() => sb.close());
  return { sb, states };
}

test("subscribe: snapshot, then live updates; connecting → live", async (t) => {
  const first = await inbound("before the client");
  const { sb, states } = client(t);
  const snapshots = [];
  sb.on("snapshot", (s) => snapshots.push(s));
  sb.connect();
  const sub = await sb.subscribe(INBOX);
  assert.equal(sub.type, "subscribed");
  assert.equal(sub.resumed, false);
  await until(sb, () => sb.state === States.LIVE, "live");
  assert.deepEqual(states, [States.CONNECTING, States.LIVE]);
  assert.equal(snapshots.length, 1);
  assert.ok(snapshots[0].conversations.some((c) => c.id === first.conversation_id), "snapshot has the conversation");
  assert.equal(typeof snapshots[0].counts.unaddressed, "number");

  const live = await inbound("while subscribed");
  await until(sb, () => sb.conversations(INBOX).some((c) => c.id === live.conversation_id), "the live update");
  const held = sb.conversations(INBOX).find((c) => c.id === live.conversation_id);
  assert.equal(held.last_message.body, "while subscribed");
});

test("version guard: an older or equal summary is never applied", async (t) => {
  const { sb } = client(t);
  const seen = [];
  sb.on("conversation", ({ conversation }) => seen.push(conversation));
  sb.connect();
  await sb.subscribe(INBOX);
  const m = await inbound("guard me");
  const id = m.conversation_id;
  await until(sb, () => sb.conversations(INBOX).some((c) => c.id === id), "the conversation");
  const v1 = sb.conversations(INBOX).find((c) => c.id === id);

  // The ack of a change brings the new version first; the update frame of
  // the same version that follows must not be applied a second time.
  const after = await sb.update(id, { tags_add: ["vip"] });
  assert.equal(after.version, v1.version + 1);
  await inbound("and again", m.conversation.contact.phone);
  await until(sb, () => sb.conversations(INBOX).find((c) => c.id === id).version === v1.version + 2, "the next version");
  const versions = seen.filter((c) => c.id === id).map((c) => c.version);
  assert.deepEqual(versions, [...new Set(versions)].sort((a, b) => a - b), "versions only grow, none twice");

  assert.equal(sb.apply(v1), false, "an older summary is refused");
  assert.equal(sb.apply({ ...v1, version: v1.version + 2 }), false, "an equal one too");
  assert.equal(sb.conversations(INBOX).find((c) => c.id === id).last_message.body, "and again");
});

test("send: ack with the stored message, client_id de-duplicates, errors reject", async (t) => {
  const { sb } = client(t);
  sb.connect();
  await sb.subscribe(INBOX);
  const m = await inbound("please answer");
  const msg = await sb.send(m.conversation_id, "an answer", { clientId: "js-dedupe-1" });
  assert.equal(msg.direction, "outbound");
  assert.equal(msg.body, "an answer");
  const again = await sb.send(m.conversation_id, "an answer", { clientId: "js-dedupe-1" });
  assert.equal(again.id, msg.id, "the same client_id is the same message");
  const note = await sb.send(m.conversation_id, "internal", { kind: "note" });
  assert.equal(note.kind, "note");

  await assert.rejects(sb.send(m.conversation_id, "stale", { ifVersion: 1 }),
    (err) => err instanceof SwitchboardError && err.code === "conflict");
  await assert.rejects(sb.send(m.conversation_id, ""), (err) => err.code === "invalid_argument");
  await assert.rejects(sb.watch("no-such-conversation"), (err) => err.code === "not_found");
  assert.equal(sb.watches.has("no-such-conversation"), false);
});

test("a request without an answer times out", async (t) => {
  const g = gated();
  const { sb } = client(t, { WebSocket: g.WebSocket });
  sb.connect();
  await sb.subscribe(INBOX);
  const m = await inbound("time me out");
  g.drop = (f) => f.type === "update_conversation";
  await assert.rejects(sb.update(m.conversation_id, { tags_add: ["x"] }, { timeoutMs: 300 }),
    (err) => err instanceof SwitchboardError && err.code === "timeout");
});

test("reconnect resumes from (epoch, seq): missed updates, no snapshot", async (t) => {
  const g = gated();
  const { sb, states } = client(t, { WebSocket: g.WebSocket });
  sb.connect();
  await sb.subscribe(INBOX);
  await until(sb, () => sb.state === States.LIVE, "live");
  let snapshots = 0;
  sb.on("snapshot", () => snapshots++);

  g.open = false;
  sb.drop();
  await until(sb, () => sb.state === States.RECONNECTING, "reconnecting");
  const missed = [];
  for (let i = 0; i < 3; i++) missed.push((await inbound("missed " + i)).conversation_id);
  g.open = true;
  await until(sb, () => sb.state === States.RESUMED, () => "resumed (states: " + states.join(",") + ")");
  await until(sb, () => missed.every((id) => sb.conversations(INBOX).some((c) => c.id === id)), "the missed updates");
  assert.equal(snapshots, 0, "a resume replays updates, it sends no snapshot");
  assert.deepEqual(states.slice(-2), [States.RECONNECTING, States.RESUMED]);
  assert.ok(g.opened >= 2);
});

test("an unknown epoch resyncs: a fresh snapshot replaces the list", async (t) => {
  const { sb } = client(t);
  sb.connect();
  await sb.subscribe(INBOX);
  await until(sb, () => sb.state === States.LIVE, "live");
  let snapshots = 0;
  sb.on("snapshot", () => snapshots++);
  sb.inboxes.get(INBOX).epoch = "an-epoch-the-server-never-had";
  sb.inboxes.get(INBOX).conversations.set("ghost", { id: "ghost", version: 1 });
  sb.drop();
  await until(sb, () => sb.state === States.RESYNCED, "resynced");
  assert.equal(snapshots, 1);
  assert.equal(sb.conversations(INBOX).some((c) => c.id === "ghost"), false, "the snapshot replaced what was held");
  assert.notEqual(sb.inboxes.get(INBOX).epoch, "an-epoch-the-server-never-had");
});

test("a send whose ack was lost is sent again after the reconnect, once", async (t) => {
  const g = gated();
  const { sb } = client(t, { WebSocket: g.WebSocket });
  sb.connect();
  await sb.subscribe(INBOX);
  const m = await inbound("retry me");
  await sb.watch(m.conversation_id);
  // The first attempt never reaches the server; the connection then drops.
  let swallowed = 0;
  g.drop = (f) => f.type === "send" && swallowed++ === 0;
  const sent = sb.send(m.conversation_id, "sent across a reconnect");
  await new Promise((r) => setTimeout(r, 50));
  sb.drop();
  const msg = await sent;
  assert.equal(msg.body, "sent across a reconnect");
  const page = await rest("GET", `/v1/conversations/${m.conversation_id}/messages`);
  assert.equal(page.messages.filter((x) => x.body === "sent across a reconnect").length, 1);
});

test("watch: items, typing from another agent, re-watched after a reconnect", async (t) => {
  const a = client(t).sb;
  const b = client(t, { token: TOKEN2 }).sb;
  a.connect(); b.connect();
  const m = await inbound("watch this");
  const id = m.conversation_id;
  const items = [], typing = [], watching = [], presence = [];
  a.on("item", (f) => items.push(f.item));
  a.on("presence", (f) => presence.push(f));
  a.on("typing", (f) => typing.push(f));
  a.on("watching", (f) => watching.push(f));
  const w = await a.watch(id);
  assert.equal(w.version, m.conversation.version);
  await until(a, () => presence.length >= 1, "presence after watching");
  assert.equal(presence[0].conversation_id, id);
  assert.equal(presence[0].agents.length, 1);
  await b.watch(id);
  await until(a, () => presence.at(-1).agents.length === 2, "presence with both agents");
  assert.deepEqual(presence.at(-1).agents, [...presence.at(-1).agents].sort());

  await inbound("a new item", m.conversation.contact.phone);
  await until(a, () => items.some((i) => i.body === "a new item"), "the item");
  b.typing(id);
  b.typing(id); // throttled: one frame
  await until(a, () => typing.length >= 1, "typing");
  assert.equal(typing[0].conversation_id, id);

  a.drop();
  await until(a, () => watching.length >= 2, "the watch re-established");
  await inbound("after the reconnect", m.conversation.contact.phone);
  await until(a, () => items.some((i) => i.body === "after the reconnect"), "the item after the reconnect");
  b.unwatch(id);
  await until(a, () => presence.at(-1).agents.length === 1, "presence without the agent that left");
  assert.deepEqual(presence.at(-1).agents, presence[0].agents);
  a.unwatch(id);
  assert.equal(a.watches.has(id), false);
});

test("watch with summaries: the summary after every change, also after a reconnect", async (t) => {
  const a = client(t).sb;
  a.connect();
  const m = await inbound("summaries please");
  const id = m.conversation_id;
  const summaries = [], watching = [];
  a.on("summary", (s) => summaries.push(s));
  a.on("watching", (w) => watching.push(w));
  await a.watch(id, { summaries: true });
  await rest("PATCH", `/v1/conversations/${id}`, { status: "closed" });
  await until(a, () => summaries.some((s) => s.conversation.status === "closed"), "the summary of the PATCH");
  assert.equal(summaries.at(-1).conversation_id, id);
  a.drop();
  await until(a, () => watching.length >= 2, "the watch re-established");
  await rest("PATCH", `/v1/conversations/${id}`, { tags_add: ["after"] });
  await until(a, () => summaries.some((s) => (s.conversation.tags || []).includes("after")), "the summary after the reconnect");
  a.unwatch(id);
});

test("a watch and a subscription withdrawn while offline are not sent again", async (t) => {
  const g = gated();
  const a = client(t, { WebSocket: g.WebSocket }).sb;
  const b = client(t, { token: TOKEN2 }).sb;
  a.connect(); b.connect();
  const m = await inbound("left while offline");
  const id = m.conversation_id;
  await a.subscribe(INBOX);
  g.open = false;
  a.drop();
  await until(a, () => a.state === States.RECONNECTING, "reconnecting");
  // Offline: watch, then leave it; subscribe again, then unsubscribe.
  const w = a.watch(id);
  a.unwatch(id);
  await assert.rejects(w, (err) => err.code === "cancelled");
  a.unsubscribe(INBOX);
  const sent = [];
  g.drop = (f) => { sent.push(f.type); return false; };
  g.open = true;
  await until(a, () => a.state === States.LIVE || a.state === States.RESUMED || a.state === States.RESYNCED, "back");
  await a.ping();
  assert.deepEqual(sent.filter((t) => t === "watch" || t === "subscribe"), [], "frames sent again: " + sent);
  // The other agent sees nobody but itself watching.
  const presence = [];
  b.on("presence", (f) => presence.push(f));
  await b.watch(id);
  await until(b, () => presence.length >= 1, "presence");
  assert.equal(presence.at(-1).agents.length, 1);
});

test("close: pending and later requests fail with closed", async (t) => {
  const { sb } = client(t);
  sb.connect();
  await sb.subscribe(INBOX);
  sb.close();
  assert.equal(sb.state, States.CLOSED);
  await assert.rejects(sb.ping(), (err) => err.code === "closed");
});
