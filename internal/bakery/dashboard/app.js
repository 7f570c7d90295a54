// The bakery's dashboard. The token lives in this tab's sessionStorage
// and goes only into the Authorization header of same-origin requests
// (never a cookie, never a URL). Bakes, their stages and their log are
// polled in place; nothing reloads the page.
"use strict";
const $ = id => document.getElementById(id);
const KEY = "aminator-token";
const STAGES = ["resolve base", "inspect package", "create volume", "attach volume", "mount", "provision",
  "scripts", "manifest", "unmount", "snapshot and register"];
const PAGE = 25;
const state = { me: null, cursors: [""], page: 0, next: "", selected: "", logSize: 0, regions: [], timers: [] };

const token = () => sessionStorage.getItem(KEY);

// api calls the API with the token; a 401 forgets it and shows the login.
async function api(path, opts = {}) {
  const headers = Object.assign({ Authorization: "Bearer " + token() }, opts.headers || {});
  const r = await fetch(path, Object.assign({}, opts, { headers, credentials: "omit", cache: "no-store" }));
  if (r.status === 401) {
    sessionStorage.removeItem(KEY);
    showLogin("That token was refused (unknown, revoked or malformed).");
    throw new Error("unauthorized");
  }
  if (!r.ok) {
    let msg = r.status + " " + r.statusText;
    try { msg = (await r.json()).error || msg; } catch (e) { /* not JSON */ }
    const err = new Error(msg); err.status = r.status; throw err;
  }
  return r;
}
const getJSON = async path => (await api(path)).json();

function el(tag, props = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "class") e.className = v; else if (k === "text") e.textContent = v; else e[k] = v;
  }
  for (const k of kids) if (k != null) e.append(k);
  return e;
}
const ago = t => {
  if (!t || t.startsWith("0001")) return "";
  const s = Math.round((Date.now() - new Date(t)) / 1000);
  if (s < 60) return s + "s ago";
  if (s < 3600) return Math.round(s / 60) + " min ago";
  if (s < 86400) return Math.round(s / 3600) + " h ago";
  return new Date(t).toLocaleDateString();
};
const dur = (a, b) => {
  if (!a || !b) return "";
  const s = Math.max(0, (new Date(b) - new Date(a)) / 1000);
  return s < 60 ? s.toFixed(s < 10 ? 1 : 0) + "s" : Math.floor(s / 60) + "m" + String(Math.round(s % 60)).padStart(2, "0") + "s";
};
const done = b => ["completed", "failed", "canceled"].includes(b.state);
function fail(err) { if (err.message !== "unauthorized") $("error").textContent = err.message; }

// --- sign in ---
function showLogin(msg) {
  stopTimers();
  $("login").hidden = false; $("app").hidden = true; $("who").hidden = true;
  $("login-error").textContent = msg || "";
  $("token").focus();
}
async function start() {
  if (!token()) return showLogin();
  try { state.me = await getJSON("/api/v1/whoami"); } catch (err) { if (err.message !== "unauthorized") showLogin(err.message); return; }
  $("login").hidden = true; $("app").hidden = false; $("who").hidden = false;
  $("team").textContent = "team " + state.me.team + (state.me.admin ? " · admin" : "");
  $("team-filter-label").hidden = !state.me.admin;
  document.body.classList.toggle("admin", !!state.me.admin);
  await loadRegions();
  await loadBakes();
  openFromHash();
  state.timers.push(setInterval(tick, 2000));
}
// A link to #bake=ID opens that bake (the id is no secret; the token is never in the URL).
function openFromHash() {
  const m = location.hash.match(/^#bake=([\w-]+)$/);
  if (m && m[1] !== state.selected) openBake(m[1]);
}
window.addEventListener("hashchange", () => { if (state.me && token()) openFromHash(); });
function stopTimers() { state.timers.forEach(clearInterval); state.timers = []; }
let ticks = 0;
function tick() {
  if (document.hidden || !token()) return;
  ticks++;
  if (state.page === 0) loadBakes();
  if (state.selected) refreshBake();
  if (ticks % 3 === 0 && !$("tab-regions").hidden) loadRegions();
}
$("login-form").addEventListener("submit", e => {
  e.preventDefault();
  const t = $("token").value.trim();
  $("token").value = "";
  if (!t) return;
  $("login-error").textContent = "";
  sessionStorage.setItem(KEY, t);
  start();
});
$("logout").addEventListener("click", () => { sessionStorage.removeItem(KEY); state.selected = ""; history.replaceState(null, "", "/"); showLogin(); });

// --- tabs ---
document.querySelectorAll(".tabs button").forEach(b => b.addEventListener("click", () => {
  document.querySelectorAll(".tabs button").forEach(x => x.classList.toggle("active", x === b));
  for (const t of ["bakes", "images", "regions"]) $("tab-" + t).hidden = t !== b.dataset.tab;
  if (b.dataset.tab === "images") loadImages().catch(fail);
  if (b.dataset.tab === "regions") loadRegions();
}));

// --- bakes ---
function query() {
  const q = new URLSearchParams({ limit: PAGE });
  const cur = state.cursors[state.page];
  if (cur) q.set("after", cur);
  for (const [k, id] of [["team", "f-team"], ["state", "f-state"], ["region", "f-region"], ["package", "f-package"]]) {
    const v = $(id).value.trim();
    if (v) q.set(k, v);
  }
  return q;
}
async function loadBakes() {
  try {
    const page = await getJSON("/api/v1/bakes?" + query());
    $("rows").replaceChildren(...page.bakes.map(row));
    $("empty").hidden = page.bakes.length > 0;
    state.next = page.next || "";
    $("next").disabled = !state.next; $("prev").disabled = state.page === 0;
    $("page-info").textContent = page.bakes.length ? "page " + (state.page + 1) : "";
    $("error").textContent = "";
  } catch (err) { fail(err); }
}
function progress(b) {
  const n = (b.stages || []).length;
  const total = Math.max(STAGES.length, n);
  const frac = b.state === "completed" ? 1 : b.state === "queued" ? 0 : Math.min(n / total, 0.97);
  const bar = el("span", { class: "bar " + b.state }, el("i"));
  bar.firstChild.style.width = Math.round(frac * 100) + "%";
  const last = n ? b.stages[n - 1].name : "";
  const label = b.state === "running" ? last || "starting" : b.state === "queued" ? "waiting for a worker" : dur(b.started, b.finished);
  return el("td", {}, bar, el("span", { class: "bar-label", text: label }));
}
function row(b) {
  const tr = el("tr", { class: b.id === state.selected ? "selected" : "" },
    el("td", { class: "mono", text: b.id }),
    el("td", { class: "team-col", text: b.team || "" }),
    el("td", {}, el("span", { class: "state " + b.state, text: b.state })),
    el("td", {}, provBadge(b)),
    el("td", { class: "mono", text: shortPkg(b.request.package), title: b.request.package }),
    el("td", { class: "wide", text: b.request.region }),
    progress(b),
    el("td", { class: "wide", text: ago(b.created), title: b.created }));
  tr.dataset.id = b.id;
  tr.addEventListener("click", () => openBake(b.id));
  return tr;
}
// provBadge is the worker's verdict on a bake's image: verified by its
// signer, FAILED with the reason, or not checked (nothing before it ends).
function provBadge(b) {
  const p = b.provenance;
  if (!p) return b.state === "completed" ? el("span", { class: "prov none", text: "not checked" }) : el("span");
  if (p.ok) return el("span", { class: "prov ok", text: "verified by " + (p.signer || p.key_id), title: p.key_id || "" });
  return el("span", { class: "prov failed", text: "FAILED: " + (p.error || "unknown"), title: p.error || "" });
}
// verdictItem is one image of a verified image's lineage.
function verdictItem(v) {
  const what = v.ok ? "verified by " + (v.signer || v.key_id) + (v.package ? ", " + v.package : "") : "FAILED: " + (v.error || "unknown");
  return el("li", { class: v.ok ? "ok" : "failed" }, el("span", { class: "mono", text: v.image }), el("span", { text: " " + what }));
}
// shortPkg names a package by its file (a path or URL's last part).
const shortPkg = p => p.split("/").pop() || p;
$("filters").addEventListener("input", () => { state.cursors = [""]; state.page = 0; loadBakes(); });
$("filters").addEventListener("submit", e => e.preventDefault());
$("next").addEventListener("click", () => { if (!state.next) return; state.cursors[state.page + 1] = state.next; state.page++; loadBakes(); });
$("prev").addEventListener("click", () => { if (state.page > 0) { state.page--; loadBakes(); } });

// --- one bake: details, stages, the log tailed while it runs ---
function openBake(id) {
  state.selected = id; state.logSize = 0; state.logDone = "";
  history.replaceState(null, "", "#bake=" + id);
  $("d-log").textContent = ""; $("d-title").textContent = id;
  $("detail").hidden = false; document.querySelector(".split").classList.add("open");
  document.querySelectorAll("#rows tr").forEach(tr => tr.classList.toggle("selected", tr.dataset.id === id));
  refreshBake();
}
$("d-close").addEventListener("click", () => {
  state.selected = ""; history.replaceState(null, "", "/");
  $("detail").hidden = true; document.querySelector(".split").classList.remove("open");
  document.querySelectorAll("#rows tr.selected").forEach(tr => tr.classList.remove("selected"));
});
let refreshing = false;
async function refreshBake() {
  if (refreshing) return;
  refreshing = true;
  const id = state.selected;
  try {
    const b = await getJSON("/api/v1/bakes/" + encodeURIComponent(id));
    if (id !== state.selected) return;
    showBake(b);
    await tailLog(b);
  } catch (err) {
    if (err.status === 404 && id === state.selected) {
      $("d-state").className = "state failed"; $("d-state").textContent = "not found";
      $("d-error").textContent = "No bake " + id + " that this token may see.";
      $("d-meta").replaceChildren(); $("d-stages").replaceChildren(); $("d-log").textContent = "";
    } else fail(err);
  } finally { refreshing = false; }
}
function showBake(b) {
  $("d-state").className = "state " + b.state; $("d-state").textContent = b.state;
  const r = b.request;
  const meta = [["Team", b.team], ["Package", r.package], ["Base", r.base_id || (r.base_name + (r.base_label ? ":" + r.base_label : ""))],
    ["Resolved base", b.resolved_base_id], ["Region", r.region], ["Arch", (r.arch || []).join(", ")], ["Image", imagesText(b)],
    ["Worker", b.worker], ["Requested", b.created && new Date(b.created).toLocaleString()],
    ["Took", done(b) && b.started && !b.started.startsWith("0001") ? dur(b.started, b.finished) : ""], ["Attempts", b.attempts || ""]];
  $("d-meta").replaceChildren(...meta.filter(([, v]) => v).flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { class: "mono", text: String(v) })]));
  $("d-error").textContent = b.error || "";
  $("d-cancel").hidden = done(b);
  $("d-stages").replaceChildren(...stageItems(b));
  $("d-prov-box").hidden = b.state !== "completed" && !b.provenance;
  $("d-prov").replaceWith(Object.assign(provBadge(b), { id: "d-prov" }));
  $("d-lineage").replaceChildren(...((b.provenance && b.provenance.lineage) || []).map(verdictItem));
}
// imagesText is the image a bake made, or each architecture's (and what
// keep_partial kept of a failed one).
function imagesText(b) {
  const ims = b.images || [];
  if (ims.length > 1 || (ims.length && !b.image_id)) return ims.map(i => i.id + " " + (i.arch || "") + " " + (i.name || "")).join(", ");
  return b.image_id ? b.image_id + "  " + (b.image_name || "") : "";
}
function stageItems(b) {
  const seen = b.stages || [];
  const items = seen.map((s, i) => {
    const end = i + 1 < seen.length ? seen[i + 1].started : done(b) ? b.finished : "";
    const last = i === seen.length - 1;
    const cls = !last ? "done" : b.state === "running" ? "current" : b.state === "completed" ? "done" : "failed";
    return el("li", { class: cls, text: s.name }, end ? el("small", { text: dur(s.started, end) }) : null);
  });
  if (!done(b)) {
    const names = new Set(seen.map(s => s.name));
    const after = seen.length ? STAGES.indexOf(seen[seen.length - 1].name) : -1;
    STAGES.forEach((s, i) => { if (i > after && !names.has(s)) items.push(el("li", { text: s })); });
  }
  return items;
}
async function tailLog(b) {
  if (b.state === "queued") { $("d-log").textContent = "Waiting for a worker in " + b.request.region + "…"; return; }
  if (state.logDone === b.id) return;
  let r;
  try { r = await api("/api/v1/bakes/" + encodeURIComponent(b.id) + "/logs?offset=" + state.logSize); } catch (err) {
    if (err.status === 404) return; // no log stored yet
    throw err;
  }
  const text = await r.text();
  if (b.id !== state.selected) return;
  if (state.logSize === 0) $("d-log").textContent = "";
  if (text) $("d-log").append(text);
  state.logSize = Number(r.headers.get("X-Log-Size")) || state.logSize + text.length;
  state.logDone = ["completed", "failed", "canceled"].includes(r.headers.get("X-Bake-State")) ? b.id : "";
  if ($("d-follow").checked) $("d-log").scrollTop = $("d-log").scrollHeight;
}
$("d-cancel").addEventListener("click", async () => {
  if (!confirm("Cancel bake " + state.selected + "?")) return;
  try { await api("/api/v1/bakes/" + encodeURIComponent(state.selected) + "/cancel", { method: "POST" }); refreshBake(); loadBakes(); } catch (err) { fail(err); }
});

// --- a new bake ---
$("new-bake-toggle").addEventListener("click", () => { $("new-bake").hidden = !$("new-bake").hidden; if (!$("new-bake").hidden) $("nb-package").focus(); });
$("nb-cancel").addEventListener("click", () => { $("new-bake").hidden = true; });
$("new-bake").addEventListener("submit", async e => {
  e.preventDefault();
  const base = $("nb-base").value.trim();
  const req = { package: $("nb-package").value.trim(), region: $("nb-region").value };
  if (/^ami-[0-9a-f]+$/.test(base)) req.base_id = base; else req.base_name = base;
  if ($("nb-label").value) req.base_label = $("nb-label").value;
  if ($("nb-rebake").checked) req.rebake = true;
  $("nb-result").textContent = "Submitting…";
  try {
    const r = await api("/api/v1/bakes", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(req) });
    const res = await r.json();
    $("nb-result").textContent = res.cached ? "An identical bake exists: " + res.bake.id : "Queued as " + res.bake.id;
    $("nb-result").className = "note";
    state.cursors = [""]; state.page = 0;
    await loadBakes();
    openBake(res.bake.id);
  } catch (err) { $("nb-result").textContent = err.message; $("nb-result").className = "error"; }
});

// --- regions: queues and workers ---
async function loadRegions() {
  let rs;
  try { rs = (await getJSON("/api/v1/regions")).regions; } catch (err) { return fail(err); }
  state.regions = rs;
  fillRegions($("f-region"), rs, "any"); fillRegions($("nb-region"), rs); fillRegions($("i-region"), rs);
  $("regions").replaceChildren(...rs.map(r => el("div", { class: "card region" + (r.workers ? "" : " idle") },
    el("h2", { text: r.region }),
    el("div", { class: "nums" }, num(r.workers, "live workers", "workers"), num(r.queued, "queued"), num(r.running, "baking")),
    r.worker_names ? el("ul", {}, ...r.worker_names.map(n => el("li", { class: "mono", text: n }))) : null,
    r.nodes ? el("p", { class: "note", text: "nodes: " + r.nodes.join(", ") }) : null,
    r.pools ? el("ul", { class: "pools" }, ...Object.entries(r.pools).map(([b, n]) => el("li", { class: "mono", text: b + ": " + n + " pooled" }))) : null,
    r.workers ? null : el("p", { class: "error", text: "No live worker: requests for this region are refused." }))));
  if (!rs.length) $("regions").replaceChildren(el("p", { class: "note", text: "No region has a live worker or a queued bake." }));
}
const num = (n, label, cls) => el("div", {}, el("b", { class: cls || "", text: String(n) }), el("span", { text: label }));
function fillRegions(sel, rs, none) {
  const keep = sel.value;
  const opts = rs.map(r => el("option", { value: r.region, text: r.region }));
  if (none) opts.unshift(el("option", { value: "", text: none }));
  sel.replaceChildren(...opts);
  if ([...sel.options].some(o => o.value === keep)) sel.value = keep;
}

// --- images: families, channels, lineage ---
async function loadImages() {
  const region = $("i-region").value;
  if (!region) { $("families").replaceChildren(el("p", { class: "note", text: "No region to show." })); return; }
  const res = await getJSON("/api/v1/images?region=" + encodeURIComponent(region));
  $("families").replaceChildren(...res.families.map(family));
  if (!res.families.length) $("families").replaceChildren(el("p", { class: "note", text: "No images in " + region + " that this token may see." }));
}
$("i-region").addEventListener("change", () => loadImages().catch(fail));
function family(f) {
  const chips = Object.entries(f.channels).map(([label, id]) => el("span", { class: "chip " + label, text: label + " → " + id }));
  return el("div", { class: "card family" },
    el("div", { class: "role", text: f.role || "" }), el("h2", { text: f.family }),
    el("div", { class: "chips" }, ...(chips.length ? chips : [el("span", { class: "note", text: "no channel labels" })])),
    el("ul", { class: "images" }, ...f.images.map(image)));
}
function image(im) {
  const chain = [...im.lineage.map(a => node(a.family || a.name || a.id, a.role, a.gone ? a.id + " (gone)" : a.name)), node(im.name, im.role, im.id)];
  const line = el("div", { class: "lineage" });
  chain.forEach((n, i) => { if (i) line.append("→"); line.append(n); });
  return el("li", {},
    el("div", {}, el("span", { class: "mono", text: im.id }), " ", el("b", { text: im.name }), im.channel ? el("span", { class: "chip " + im.channel, text: im.channel }) : null,
      el("span", { class: "note", text: "  " + ago(im.created) })),
    line);
}
const node = (text, role, title) => el("span", { class: "node " + (role || ""), text, title: title || "" });

start();
