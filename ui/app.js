/*
 * cofi dashboard: a single page over the server's own JSON API (no second
 * backend, no network fetch beyond this server). Every view has its URL:
 *   #/model  #/user/ID  #/item/ID  #/try?liked=a,b,c  #/live
 * Text from the model (IDs, titles) is only ever set as textContent.
 */
"use strict";

const api = "..";            // the dashboard is served at /ui/
const main = document.getElementById("main");

/* h("tag.class", {attr: v}, children...): builds an element; strings become text nodes. */
function h(spec, attrs, ...kids) {
  const [tag, ...cls] = spec.split(".");
  const el = document.createElement(tag);
  if (cls.length) el.className = cls.join(" ");
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const kid of kids.flat(Infinity)) {
    if (kid === undefined || kid === null || kid === false) continue;
    el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return el;
}

const enc = encodeURIComponent;
const fmt = (x, d = 3) => (typeof x === "number" && isFinite(x) ? x.toFixed(d) : "–");
const int = (x) => (typeof x === "number" ? x.toLocaleString("en-US") : "–");

/* GET a JSON route; throws an Error carrying the server's message. */
async function get(path) {
  const r = await fetch(`${api}/${path}`, { headers: { Accept: "application/json" } });
  let body = null;
  try { body = await r.json(); } catch (e) { body = null; }
  if (!r.ok) {
    const msg = body && body.error ? body.error.message : `${r.status} ${r.statusText}`;
    const err = new Error(msg);
    err.status = r.status;
    throw err;
  }
  return body;
}

async function getText(path) {
  const r = await fetch(`${api}/${path}`);
  if (!r.ok) throw new Error(`${path}: ${r.status}`);
  return r.text();
}

function show(...nodes) {
  main.replaceChildren(...nodes);
}

function card(title, ...body) {
  return h("section.card", {}, h("h2", {}, title), ...body);
}

function failure(e) {
  return h("p.error", { role: "alert" }, e.message || String(e));
}

const itemLink = (id, title) => h("a", { href: `#/item/${enc(id)}` }, title || id);
const userLink = (id) => h("a", { href: `#/user/${enc(id)}` }, id);

/* A table of scored items; with explanations when the answer has them. */
function scoredItems(list) {
  if (!list || !list.length) return h("p.muted", {}, "Nothing to show.");
  return h("table", {},
    h("thead", {}, h("tr", {}, h("th.num", {}, "#"), h("th", {}, "Item"), h("th.num", {}, "Score"))),
    h("tbody", {}, list.map((r, i) => h("tr", {},
      h("td.num", {}, i + 1),
      h("td", {}, itemLink(r.item_id, r.title),
        r.because && r.because.length ? h("div.because", {}, "because you liked ",
          r.because.map((b, j) => [j ? ", " : "", itemLink(b.item_id, b.title),
            ` (${fmt(b.contribution)})`])) : null),
      h("td.num", {}, fmt(r.score))))));
}

/* ---- pages --------------------------------------------------------------- */

async function pageModel() {
  const hl = await get("health");
  const m = hl.model || {};
  const s = hl.server || {};
  const p = m.params || {};
  document.getElementById("footer-version").textContent = `cofi ${s.version || ""}`;
  const kv = (pairs) => h("dl.kv", {}, pairs.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
  const parts = [
    card("Model", kv([
      ["Users", int(m.users)], ["Items", int(m.items)], ["Interactions", int(m.interactions)],
      ["Factors", int(m.factors)], ["Trained", m.trained_at || "–"],
      ["Training time", `${fmt(m.train_seconds, 2)} s`], ["Training loss", fmt(m.train_loss, 5)],
      ["File", m.path || "–"], ["Size", `${int(m.file_bytes)} bytes`],
      ["Checksum", m.checksum || "–"], ["Storage", m.storage || "–"],
      ["Live version", `generation ${m.generation ?? "–"}${m.version ? ` (${m.version})` : ""}`],
    ])),
    card("Parameters", kv(Object.entries(p).map(([k, v]) => [k, typeof v === "number" ? String(+v.toPrecision(6)) : String(v)]))),
    card("Server", kv([
      ["Version", s.version || "–"], ["Kernel set", s.kernel_set || "–"],
      ["Threads", int(s.threads)], ["Uptime", `${int(s.uptime_seconds)} s`],
      ["Reloads", hl.reloads ? `${hl.reloads.succeeded} ok, ${hl.reloads.failed} failed` : "–"],
    ])),
  ];
  if (Array.isArray(hl.versions) && hl.versions.length)
    parts.push(card("Versions", h("ul.plain", {}, hl.versions.map((v) =>
      h("li", {}, String(v.version || v.id || ""), h("span.muted", {}, v.created_at || v.status || ""))))));
  show(h("h1", {}, "Model"), h("div.grid", {}, parts));
}

function searchForm(label, value, go) {
  const input = h("input", { type: "search", value: value || "", "aria-label": label,
    placeholder: label, name: "q" });
  return h("form.search", { role: "search", onsubmit: (e) => {
    e.preventDefault();
    if (input.value.trim()) go(input.value.trim());
  } }, input, h("button", { type: "submit" }, "Show"));
}

async function pageUser(id) {
  const form = searchForm("User ID", id, (v) => { location.hash = `#/user/${enc(v)}`; });
  if (!id) { show(h("h1", {}, "User"), form); form.querySelector("input").focus(); return; }
  const q = enc(id);
  const [recs, hist, sim] = await Promise.allSettled([
    get(`recommend?user_id=${q}&k=10&explain=1`),
    get(`users/${q}/history?limit=50`),
    get(`similar_users?user_id=${q}&k=10`),
  ]);
  const recCard = card("Recommendations",
    recs.status === "fulfilled" ? scoredItems(recs.value.recommendations) : failure(recs.reason));
  let histBody;
  if (hist.status !== "fulfilled") histBody = failure(hist.reason);
  else if (!hist.value.events || !hist.value.events.length) histBody = h("p.muted", {}, "No history.");
  else {
    const evs = hist.value.events;
    const hasEvent = evs.some((ev) => ev.event || ev.timestamp);
    histBody = h("table", {},
      h("thead", {}, h("tr", {}, h("th", {}, "Item"), hasEvent ? h("th", {}, "Event") : null, h("th.num", {}, "Value"))),
      h("tbody", {}, evs.map((ev) => h("tr", {},
        h("td", {}, itemLink(ev.item_id, ev.title)),
        hasEvent ? h("td", {}, [ev.event, ev.timestamp].filter(Boolean).join(" ")) : null,
        h("td.num", {}, ev.value === undefined ? "" : fmt(ev.value, 1))))));
  }
  const histCard = card("History", histBody);
  if (hist.status === "fulfilled" && hist.value.source) {
    const total = hist.value.total;
    const shown = (hist.value.events || []).length;
    histCard.append(h("p.muted", {}, `from the ${hist.value.source}` +
      (typeof total === "number" && total > shown ? ` (${shown} of ${int(total)} shown)` : "")));
  }
  const simCard = card("Similar users", sim.status === "fulfilled"
    ? h("ul.plain", {}, sim.value.similar.map((s) => h("li", {}, userLink(s.user_id), h("span.muted", {}, fmt(s.score)))))
    : failure(sim.reason));
  show(h("h1", {}, `User ${id}`), form, h("div.grid", {}, recCard, histCard, simCard));
}

async function pageItem(id) {
  const form = searchForm("Item ID", id, (v) => { location.hash = `#/item/${enc(v)}`; });
  if (!id) { show(h("h1", {}, "Item"), form); form.querySelector("input").focus(); return; }
  const q = enc(id);
  const [meta, sim] = await Promise.allSettled([get(`items/${q}`), get(`similar_items?item_id=${q}&k=10`)]);
  let title = id;
  let metaCard;
  if (meta.status === "fulfilled") {
    const m = meta.value;
    title = m.title || id;
    const label = (k) => (k === "interactions" ? "users who interacted" : k.replace(/_/g, " "));
    metaCard = card("Item", h("dl.kv", {}, Object.entries(m).map(([k, v]) =>
      [h("dt", {}, label(k)), h("dd", {}, typeof v === "number" ? int(v)
        : typeof v === "object" ? JSON.stringify(v) : String(v))])));
  } else {
    metaCard = card("Item", failure(meta.reason));
  }
  const simCard = card("Similar items",
    sim.status === "fulfilled" ? scoredItems(sim.value.similar) : failure(sim.reason));
  const tryLink = h("p", {}, h("a", { href: `#/try?liked=${enc(id)}` }, "Try it with this item"));
  show(h("h1", {}, title), form, h("div.grid", {}, metaCard, simCard), tryLink);
}

async function pageTry(params) {
  const liked = (params.get("liked") || "").split(",").filter(Boolean);
  const setLiked = (ids) => { location.hash = `#/try?liked=${ids.map(enc).join(",")}`; };
  const results = h("div", {}, h("p.muted", {}, liked.length ? "Loading…" : "Pick a few items you like."));
  const input = h("input", { type: "search", placeholder: "Search titles", "aria-label": "Search titles",
    autocomplete: "off" });
  const found = h("ul.plain", { "aria-label": "Search results" });
  let timer = null;
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const q = input.value.trim();
      if (!q) { found.replaceChildren(); return; }
      try {
        const r = await get(`items?search=${enc(q)}&k=15`);
        found.replaceChildren(...r.items.map((it) => h("li", {}, it.title || it.item_id,
          h("button.secondary", { type: "button", disabled: liked.includes(it.item_id),
            onclick: () => setLiked([...liked, it.item_id]) }, liked.includes(it.item_id) ? "Picked" : "Pick"))));
        if (!r.items.length) found.replaceChildren(h("li.muted", {}, "No title matches."));
      } catch (e) { found.replaceChildren(h("li", {}, failure(e))); }
    }, 150);
  });
  const chips = h("div.chips", { "aria-label": "Liked items" }, liked.map((id) =>
    h("span.chip", {}, h("span", { "data-item": id }, id),
      h("button", { type: "button", "aria-label": `Remove ${id}`,
        onclick: () => setLiked(liked.filter((x) => x !== id)) }, "×"))));
  show(h("h1", {}, "Try it"), h("div.grid", {},
    card("Liked", chips, input, found),
    card("Recommendations", results)));
  input.focus();
  if (!liked.length) return;
  // Titles for the chips, then the cold-start answer.
  for (const span of chips.querySelectorAll("[data-item]"))
    get(`items/${enc(span.dataset.item)}`).then((m) => { if (m.title) span.textContent = m.title; }, () => {});
  try {
    const r = await get(`recommend_cold?liked=${liked.map(enc).join(",")}&k=10&explain=1`);
    results.replaceChildren(scoredItems(r.recommendations),
      r.unknown && r.unknown.length ? h("p.muted", {}, `Not in the model: ${r.unknown.join(", ")}`) : null);
  } catch (e) { results.replaceChildren(failure(e)); }
}

/* Live: polls /metrics each second and draws requests/s and latency. */
let liveTimer = null;
const samples = [];

function parseMetrics(text) {
  let total = 0;
  const buckets = new Map(); // le -> cumulative count over all routes
  const routes = new Map(); // route -> requests since start
  for (const line of text.split("\n")) {
    if (line.startsWith("cofi_requests_total{")) {
      const m = /route="([^"]*)"/.exec(line);
      if (m) routes.set(m[1], (routes.get(m[1]) || 0) + Number(line.slice(line.lastIndexOf(" ") + 1)));
    }
    // The dashboard's own polling (/metrics, /feedback, its files) is left out.
    if (/route="(\/metrics|\/feedback|\/ui[^"]*)"/.test(line)) continue;
    if (line.startsWith("cofi_requests_total{")) total += Number(line.slice(line.lastIndexOf(" ") + 1));
    else if (line.startsWith("cofi_request_duration_seconds_bucket{")) {
      const m = /le="([^"]+)"\}\s+(\S+)/.exec(line);
      if (m) buckets.set(m[1], (buckets.get(m[1]) || 0) + Number(m[2]));
    }
  }
  return { t: Date.now() / 1000, total, buckets, routes };
}

/* The q-quantile (seconds) of the requests between two samples, from the histogram. */
function quantile(a, b, q) {
  const les = [...b.buckets.keys()].filter((k) => k !== "+Inf").map(Number).sort((x, y) => x - y);
  const n = (b.buckets.get("+Inf") || 0) - (a.buckets.get("+Inf") || 0);
  if (n <= 0) return null;
  for (const le of les) {
    const key = [...b.buckets.keys()].find((k) => Number(k) === le);
    const c = (b.buckets.get(key) || 0) - (a.buckets.get(key) || 0);
    if (c >= q * n) return le;
  }
  return les.length ? les[les.length - 1] : null;
}

/* A line chart of one or more series ({name, points: [{x, y}]}), scaled to the largest y. */
function chart(series, label, unit) {
  if (!series.length || !("points" in series[0])) series = [{ name: "", points: series }];
  const w = 320, hgt = 120, pad = 14;
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", `0 0 ${w} ${hgt}`);
  svg.setAttribute("class", "chart");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", label);
  const all = series.flatMap((s) => s.points);
  const max = Math.max(1e-9, ...all.map((p) => p.y));
  const axis = document.createElementNS(svg.namespaceURI, "line");
  Object.entries({ x1: pad, y1: hgt - pad, x2: w, y2: hgt - pad, class: "axis" }).forEach(([k, v]) => axis.setAttribute(k, v));
  svg.append(axis);
  const text = document.createElementNS(svg.namespaceURI, "text");
  text.setAttribute("x", 2); text.setAttribute("y", 12);
  text.textContent = `${+max.toPrecision(3)} ${unit}`;
  svg.append(text);
  const t0 = Math.min(...all.map((p) => p.x)), t1 = Math.max(...all.map((p) => p.x));
  series.forEach((s, k) => {
    const points = s.points;
    if (points.length < 2) return;
    const path = points.map((p, i) => {
      const x = pad + ((p.x - t0) / Math.max(1e-9, t1 - t0)) * (w - pad);
      const y = hgt - pad - (p.y / max) * (hgt - 2 * pad);
      return `${i ? "L" : "M"}${x.toFixed(1)},${y.toFixed(1)}`;
    }).join(" ");
    const line = document.createElementNS(svg.namespaceURI, "path");
    line.setAttribute("d", path);
    line.setAttribute("class", `series s${k}`);
    svg.append(line);
    if (s.name) {
      const tag = document.createElementNS(svg.namespaceURI, "text");
      tag.setAttribute("x", w - 2);
      tag.setAttribute("y", 12 + 12 * k);
      tag.setAttribute("text-anchor", "end");
      tag.setAttribute("class", `s${k}`);
      tag.textContent = s.name;
      svg.append(tag);
    }
  });
  return svg;
}

async function pageLive() {
  const rate = h("div", {}, h("p.muted", {}, "Collecting…"));
  const lat = h("div", {});
  const events = h("div", {});
  const totals = h("div", {});
  show(h("h1", {}, "Live"), h("div.grid", {},
    card("Requests per second", rate), card("Latency (p50, p99)", lat),
    card("Since start", totals), card("Latest feedback", events)));
  let feedback = true; // until the server says it has no store (404)
  const tick = async () => {
    try {
      samples.push(parseMetrics(await getText("metrics")));
      while (samples.length > 300) samples.shift(); // five minutes at one a second
      const pts = [], p50 = [], p99 = [];
      for (let i = 1; i < samples.length; i++) {
        const a = samples[i - 1], b = samples[i], dt = Math.max(1e-3, b.t - a.t);
        pts.push({ x: b.t, y: Math.max(0, (b.total - a.total) / dt) });
        const q50 = quantile(a, b, 0.5), q99 = quantile(a, b, 0.99);
        if (q50 !== null) p50.push({ x: b.t, y: q50 * 1000 });
        if (q99 !== null) p99.push({ x: b.t, y: q99 * 1000 });
      }
      if (pts.length) rate.replaceChildren(chart(pts, "requests per second", "req/s"),
        h("p.legend", {}, `now ${fmt(pts[pts.length - 1].y, 1)} req/s`));
      lat.replaceChildren(chart([{ name: "p50", points: p50 }, { name: "p99", points: p99 }],
        "latency p50 and p99 in milliseconds", "ms"),
        h("p.legend", {}, p50.length ? `p50 ≤ ${fmt(p50[p50.length - 1].y, 2)} ms, p99 ≤ ${fmt(p99[p99.length - 1].y, 2)} ms (bucket bounds)` : "no requests yet"));
      const last = samples[samples.length - 1];
      const none = { buckets: new Map() };
      const a50 = quantile(none, last, 0.5), a99 = quantile(none, last, 0.99);
      totals.replaceChildren(
        h("p.legend", {}, `${int(last.total)} requests (the dashboard's own not counted)` +
          (a50 !== null ? `, p50 ≤ ${fmt(a50 * 1000, 2)} ms, p99 ≤ ${fmt(a99 * 1000, 2)} ms` : "")),
        h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "Route"), h("th.num", {}, "Requests"))),
          h("tbody", {}, [...last.routes].sort((x, y) => y[1] - x[1]).map(([route, n]) =>
            h("tr", {}, h("td", {}, route), h("td.num", {}, int(n)))))));
    } catch (e) { rate.replaceChildren(failure(e)); }
    if (!feedback) return;
    try {
      const f = await get("feedback?limit=10");
      events.replaceChildren(f.events && f.events.length
        ? h("ul.plain", {}, f.events.map((ev) => h("li", {}, [userLink(ev.user_id), " ", ev.event || "", " ",
          itemLink(ev.item_id, ev.title)], h("span.muted", {}, ev.timestamp || ""))))
        : h("p.muted", {}, "No events yet."));
    } catch (e) {
      if (e.status === 404) feedback = false;
      events.replaceChildren(h("p.muted", {}, e.status === 404 ? "No store attached: start cofi serve with --store." : e.message));
    }
  };
  await tick();
  liveTimer = setInterval(tick, 1000);
}

/* ---- routing ------------------------------------------------------------- */

async function route() {
  if (liveTimer) { clearInterval(liveTimer); liveTimer = null; }
  const hash = location.hash.replace(/^#\/?/, "") || "model";
  const [path, query] = hash.split("?");
  const [page, ...rest] = path.split("/");
  const arg = rest.length ? decodeURIComponent(rest.join("/")) : "";
  const params = new URLSearchParams(query || "");
  for (const a of document.querySelectorAll("nav a"))
    a.classList.toggle("active", a.dataset.page === page);
  try {
    if (page === "user") await pageUser(arg);
    else if (page === "item") await pageItem(arg);
    else if (page === "try") await pageTry(params);
    else if (page === "live") await pageLive();
    else await pageModel();
  } catch (e) {
    show(h("h1", {}, "Something went wrong"), failure(e));
  }
  if (!main.contains(document.activeElement)) main.focus({ preventScroll: true });
}

window.addEventListener("hashchange", route);
route();
get("health").then((hl) => {
  document.getElementById("footer-version").textContent = `cofi ${(hl.server && hl.server.version) || ""}`;
}, () => {});
