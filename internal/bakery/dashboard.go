package bakery

import (
	"net/http"
)

// The dashboard is a static page: it asks for a token, keeps it in the
// tab's sessionStorage (never a cookie, so no other site's page can make
// the browser send it) and reads the API with it.
const dashboardHTML = `<!doctype html>
<html><head><meta charset="utf-8"><title>aminator bakery</title>
<style>
body{font:14px system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.35em .6em;border-bottom:1px solid #ddd}
th{background:#f4f4f4}.queued{color:#777}.running{color:#0a58ca}.completed{color:#198754}.failed{color:#dc3545}.canceled{color:#b8860b}
code{font-size:13px}pre{background:#f7f7f7;padding:1em;max-height:30em;overflow:auto}
</style><script src="/dashboard.js" defer></script></head><body>
<h1>aminator bakery</h1>
<form id="login" hidden><label>API token <input id="token" type="password" autocomplete="off" size="60"></label> <button>Open</button></form>
<div id="main" hidden>
<p><span id="who"></span> · <span id="count"></span> · <button id="logout">Forget token</button></p>
<table><thead><tr><th>bake</th><th>team</th><th>state</th><th>package</th><th>base</th><th>region</th><th>image</th><th>worker</th><th>requested</th><th></th></tr></thead><tbody id="rows"></tbody></table>
<p><button id="more" hidden>More</button></p>
<pre id="log" hidden></pre>
</div><p id="error"></p></body></html>
`

const dashboardJS = `"use strict";
const $ = id => document.getElementById(id);
const token = () => sessionStorage.getItem("aminator-token");
async function api(path) {
  const r = await fetch(path, {headers: {Authorization: "Bearer " + token()}, credentials: "omit"});
  if (r.status === 401) { sessionStorage.removeItem("aminator-token"); show(); throw new Error("the token was refused"); }
  if (!r.ok) throw new Error(path + ": " + r.status + " " + (await r.text()));
  return r;
}
function cell(tr, text, cls) { const td = tr.insertCell(); td.textContent = text || ""; if (cls) td.className = cls; return td; }
function row(b) {
  const tr = document.createElement("tr");
  cell(tr, b.id); cell(tr, b.team); cell(tr, b.state + (b.error ? " — " + b.error : ""), b.state);
  cell(tr, b.request.package); cell(tr, b.resolved_base_id || b.request.base_name); cell(tr, b.request.region);
  cell(tr, b.image_id ? b.image_id + " " + (b.image_name || "") : ""); cell(tr, b.worker);
  cell(tr, new Date(b.created).toLocaleString());
  const a = document.createElement("a"); a.href = "#"; a.textContent = "log";
  a.onclick = async e => { e.preventDefault(); try { $("log").textContent = await (await api("/api/v1/bakes/" + b.id + "/logs")).text(); } catch (err) { $("log").textContent = err.message; } $("log").hidden = false; };
  tr.insertCell().appendChild(a);
  return tr;
}
let next = "";
async function load(more) {
  try {
    const page = await (await api("/api/v1/bakes?limit=50" + (more ? "&after=" + encodeURIComponent(next) : ""))).json();
    if (!more) $("rows").replaceChildren();
    page.bakes.forEach(b => $("rows").appendChild(row(b)));
    next = page.next || ""; $("more").hidden = !next;
    $("count").textContent = $("rows").rows.length + " bakes shown"; $("error").textContent = "";
  } catch (err) { $("error").textContent = err.message; }
}
async function show() {
  const have = !!token(); $("login").hidden = have; $("main").hidden = !have;
  if (!have) return;
  try { const w = await (await api("/api/v1/whoami")).json(); $("who").textContent = "team " + w.team + (w.admin ? " (admin)" : ""); } catch (err) { $("error").textContent = err.message; return; }
  load(false);
}
$("login").onsubmit = e => { e.preventDefault(); sessionStorage.setItem("aminator-token", $("token").value.trim()); $("token").value = ""; show(); };
$("logout").onclick = () => { sessionStorage.removeItem("aminator-token"); show(); };
$("more").onclick = () => load(true);
setInterval(() => { if (token() && !document.hidden && !next) load(false); }, 10000);
show();
`

const dashboardCSP = "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; " +
	"form-action 'none'; frame-ancestors 'none'; base-uri 'none'"

func (a *API) dashboard(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Security-Policy", dashboardCSP)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write([]byte(dashboardHTML))
}

func (a *API) dashboardScript(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	w.Write([]byte(dashboardJS))
}
