// The admin dashboard: cluster members and node stats, refreshed every 2 s.
"use strict";
const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem("sb_admin_token") || "";
let timer = null;

async function api(path, method = "GET") {
  const res = await fetch(path, { method, headers: { "Authorization": "Bearer " + token } });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error((body.error && body.error.message) || res.statusText);
  return body;
}
function text(s) { const d = document.createElement("div"); d.textContent = s == null ? "—" : String(s); return d.innerHTML; }

async function refresh() {
  try {
    const [cluster, stats] = await Promise.all([api("/v1/admin/cluster"), api("/v1/admin/stats")]);
    $("members").innerHTML = cluster.members.map((m) => `<tr data-id="${text(m.id)}">
      <td>${text(m.id)}${m.id === cluster.self ? " (this node)" : ""}</td><td>${text(m.address)}</td><td>${text((m.kinds || []).join(", "))}</td>
      <td>${text(m.activations && m.activations.conversation)}</td><td>${text(m.activations && m.activations.inbox)}</td><td>${text(m.status)}</td></tr>`).join("");
    $("stats").innerHTML = Object.entries(stats).filter(([, v]) => typeof v !== "object")
      .map(([k, v]) => `<dt>${text(k)}</dt><dd data-key="${text(k)}">${text(typeof v === "number" ? Math.round(v * 100) / 100 : v)}</dd>`).join("");
    $("indexer").textContent = stats.indexer_paused ? "Indexing is paused." : "Indexing is running.";
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
