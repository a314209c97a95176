// The admin dashboard: cluster members and node stats, refreshed every 2 s,
// and plots of the last 15 minutes of the stats (uPlot, vendored under
// /assets/vendor: no CDN at run time).
"use strict";
const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem("sb_admin_token") || "";
let timer = null;

const WINDOW_S = 15 * 60;
// What is plotted: a title and the /v1/admin/stats keys of its series. A
// chart whose keys the node does not report (no webhooks deliverer, no
// freshness metric) is left out.
const CHARTS = [
  { title: "Ingest (events/s)", keys: ["ingest_per_s"] },
  { title: "Commit p99 (ms)", keys: ["commit_p99_ms"] },
  { title: "Freshness p99 (ms)", keys: ["freshness_p99_ms"] },
  { title: "Index lag (ms)", keys: ["index_lag_ms"] },
  { title: "Webhook delivery lag (ms)", keys: ["webhook_delivery_lag_ms", "delivery_lag_ms", "webhook_lag_ms"] },
  { title: "Websocket connections", keys: ["ws_connections"] },
  { title: "Activations", keys: ["active_conversations", "active_inboxes"] },
];
const COLORS = ["#1d4ed8", "#c2410c", "#15803d"];
const history = { t: [], series: new Map() }; // key → values aligned with t
const plots = new Map(); // chart title → {plot, keys}

function record(stats) {
  const now = Date.now() / 1000;
  history.t.push(now);
  for (const [k, v] of Object.entries(stats)) {
    if (typeof v !== "number" && v !== null) continue;
    if (!history.series.has(k)) history.series.set(k, history.t.slice(0, -1).map(() => null));
    history.series.get(k).push(typeof v === "number" && isFinite(v) ? v : null);
  }
  for (const vals of history.series.values()) while (vals.length < history.t.length) vals.push(null);
  while (history.t.length && history.t[0] < now - WINDOW_S) {
    history.t.shift();
    for (const vals of history.series.values()) vals.shift();
  }
}

function drawCharts() {
  if (typeof uPlot === "undefined") return;
  for (const c of CHARTS) {
    const keys = c.keys.filter((k) => history.series.has(k));
    if (!keys.length) continue;
    const data = [history.t, ...keys.map((k) => history.series.get(k))];
    let p = plots.get(c.title);
    if (!p) {
      const box = document.createElement("figure");
      box.className = "chart";
      box.dataset.chart = c.title;
      box.setAttribute("aria-label", c.title);
      $("charts").append(box);
      const plot = new uPlot({
        title: c.title, width: Math.max(260, box.clientWidth), height: 180,
        // Always the last 15 minutes, however few samples there are yet.
        scales: { x: { time: true, range: () => { const now = Date.now() / 1000; return [now - WINDOW_S, now]; } } },
        series: [{}, ...keys.map((k, i) => ({ label: k, stroke: COLORS[i % COLORS.length], width: 2, spanGaps: true }))],
        axes: [{}, { size: 60 }],
      }, data, box);
      p = { plot, keys };
      plots.set(c.title, p);
    } else {
      p.plot.setData(data);
    }
  }
}

async function api(path, method = "GET") {
  const res = await fetch(path, { method, headers: { "Authorization": "Bearer " + token } });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error((body.error && body.error.message) || res.statusText);
  return body;
}
function text(s) { const d = document.createElement("div"); d.textContent = s == null ? "—" : String(s); return d.innerHTML; }

// counted says how fresh a member's numbers are: the answering node counts
// its own, the others' arrive in their gossip heartbeats every 300 ms, so
// numbers seconds old mean the member has stopped reporting.
function counted(m) {
  if (!m.activations) return `<td>not heard from yet</td>`;
  const age = m.activations_age_ms || 0;
  if (m.self || age === 0) return `<td>now</td>`;
  const stale = age > 2000;
  return `<td class="${stale ? "stale" : ""}" title="from its gossip heartbeat">${text((age / 1000).toFixed(1))} s ago${stale ? " (stale)" : ""}</td>`;
}

async function refresh() {
  try {
    const [cluster, stats] = await Promise.all([api("/v1/admin/cluster"), api("/v1/admin/stats")]);
    $("members").innerHTML = cluster.members.map((m) => `<tr data-id="${text(m.id)}">
      <td>${text(m.id)}${m.self || m.id === cluster.self ? " (this node)" : ""}</td><td>${text(m.address)}</td><td>${text((m.kinds || []).join(", "))}</td>
      <td data-kind="conversation">${text(m.activations && m.activations.conversation)}</td><td data-kind="inbox">${text(m.activations && m.activations.inbox)}</td>
      ${counted(m)}<td>${text(m.status)}</td></tr>`).join("");
    $("stats").innerHTML = Object.entries(stats).filter(([, v]) => typeof v !== "object")
      .map(([k, v]) => `<dt>${text(k)}</dt><dd data-key="${text(k)}">${text(typeof v === "number" ? Math.round(v * 100) / 100 : v)}</dd>`).join("");
    $("indexer").textContent = stats.indexer_paused ? "Indexing is paused." : "Indexing is running.";
    $("indexer").dataset.paused = String(!!stats.indexer_paused);
    record(stats);
    drawCharts();
    $("status").textContent = "live"; $("status").className = "pill live";
  } catch (err) {
    $("status").textContent = err.message; $("status").className = "pill down";
  }
}

async function signIn(t) {
  token = t;
  await api("/v1/admin/stats");
  sessionStorage.setItem("sb_admin_token", t);
  $("login").hidden = true; $("app").hidden = false;
  await refresh();
  clearInterval(timer); timer = setInterval(refresh, 2000);
}

$("login-form").addEventListener("submit", async (e) => {
  e.preventDefault(); $("login-error").textContent = "";
  try { await signIn($("token").value.trim()); } catch (err) { $("login-error").textContent = "Sign-in failed: " + err.message; }
});
$("pause").addEventListener("click", () => api("/v1/admin/indexer/pause", "POST").then(refresh).catch((e) => alert(e.message)));
$("resume").addEventListener("click", () => api("/v1/admin/indexer/resume", "POST").then(refresh).catch((e) => alert(e.message)));
if (token) signIn(token).catch(() => sessionStorage.removeItem("sb_admin_token"));
