// The live page: one EventSource on /v1/vips/stream, no library, nothing fetched from elsewhere.
// A stream starts with a snapshot; session, action and count events follow. Times on the page
// are the stream's (its clock moves on with the wall clock between events), so a compressed demo
// day and a live site both read right.
"use strict";

const MAX_ACTIONS = 50;
const MAX_SAMPLES = 360;
const vips = new Map(); // user_id -> ActiveVip
let actions = [];
let history = [];
let clock = { streamMs: null, wallMs: 0 };
let source = null;

const $ = (id) => document.getElementById(id);
const ms = (iso) => Date.parse(iso);

function streamNow() {
  return clock.streamMs === null ? null : clock.streamMs + (Date.now() - clock.wallMs);
}

function setClock(iso) {
  const t = ms(iso);
  const now = streamNow();
  if (now === null || t > now) clock = { streamMs: t, wallMs: Date.now() };
}

function duration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  const mm = String(m).padStart(h ? 2 : 1, "0"), ss = String(r).padStart(2, "0");
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

function text(tag, value, cls) {
  const el = document.createElement(tag);
  el.textContent = value === null || value === undefined ? "–" : String(value);
  if (cls) el.className = cls;
  return el;
}

function renderVips() {
  const now = streamNow();
  for (const [id, vip] of vips) if (now !== null && ms(vip.session_end) <= now) vips.delete(id);
  const rows = [...vips.values()].sort((a, b) => ms(a.session_start) - ms(b.session_start));
  const body = $("vips").tBodies[0];
  body.replaceChildren(...rows.map((vip) => {
    const tr = document.createElement("tr");
    tr.dataset.user = vip.user_id;
    const who = text("td", vip.name || vip.user_id);
    who.append(text("span", vip.user_id, "id"));
    const onSite = text("td", "", "num on-site");
    onSite.dataset.start = vip.session_start;
    tr.append(who, text("td", vip.level), onSite, text("td", vip.clicks, "num clicks"),
      text("td", vip.carts, "num carts"), text("td", vip.checkouts, "num checkouts"),
      text("td", vip.today_checkouts, "num today-checkouts"),
      text("td", duration(vip.today_seconds_on_site), "num today-time"));
    return tr;
  }));
  $("count").textContent = rows.length;
  $("nobody").hidden = rows.length > 0;
  const engage = rows.filter((v) => (v.carts || 0) > 0 && (v.checkouts || 0) === 0);
  $("engage").replaceChildren(...engage.map((vip) => {
    const li = document.createElement("li");
    li.dataset.user = vip.user_id;
    li.append(text("b", vip.name || vip.user_id), ` ${vip.carts} in the cart, `,
      text("span", `${vip.clicks} clicks this visit`));
    return li;
  }));
  $("engage-empty").hidden = engage.length > 0;
  tick();
}

function tick() {
  const now = streamNow();
  if (now === null) return;
  $("now").textContent = new Date(now).toISOString().replace(".000Z", "Z");
  for (const cell of document.querySelectorAll("td.on-site")) {
    const seconds = (now - ms(cell.dataset.start)) / 1000;
    cell.dataset.seconds = String(Math.floor(seconds));
    cell.textContent = duration(seconds);
  }
}

function renderActions() {
  $("actions").replaceChildren(...actions.map((a) => {
    const li = document.createElement("li");
    li.dataset.user = a.user_id;
    li.append(text("time", a.event_time.slice(11, 19)), text("span", a.name || a.user_id),
      text("span", `${a.action || "?"} ${a.page ?? ""}`, a.action === "checkout" ? "checkout" : ""));
    return li;
  }));
}

function renderChart() {
  const svg = $("chart");
  const counts = history.map((s) => s.count);
  const top = Math.max(1, ...counts);
  const step = counts.length > 1 ? 300 / (counts.length - 1) : 0;
  const points = counts.map((c, i) => `${(i * step).toFixed(1)},${(100 - (c / top) * 95).toFixed(1)}`);
  const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  line.setAttribute("points", points.join(" "));
  svg.replaceChildren(line);
  svg.dataset.counts = counts.join(",");
  $("chart-max").textContent = String(Math.max(0, ...counts));
}

const handlers = {
  snapshot(data) {
    vips.clear();
    for (const vip of data.active.vips) vips.set(vip.user_id, vip);
    clock = { streamMs: ms(data.active.now), wallMs: Date.now() };
    $("date").textContent = data.active.date;
    actions = data.actions.slice().reverse().slice(0, MAX_ACTIONS);
    history = data.history.slice(-MAX_SAMPLES);
    renderVips(); renderActions(); renderChart();
  },
  session({ kind, vip }) {
    setClock(vip.last_event_time);
    const shown = vips.get(vip.user_id);
    if (kind === "opened" || kind === "updated") {
      if (!shown || ms(shown.session_start) <= ms(vip.session_start)) vips.set(vip.user_id, vip);
    } else if (shown && shown.session_start === vip.session_start) {
      vips.delete(vip.user_id);
    }
    renderVips();
  },
  action(row) {
    actions.unshift(row);
    actions.length = Math.min(actions.length, MAX_ACTIONS);
    renderActions();
  },
  count(sample) {
    // The history is a point a stream minute; a sample within a minute of the last replaces it.
    setClock(sample.time);
    const last = history[history.length - 1];
    if (last && ms(sample.time) - ms(last.time) < 60000) history[history.length - 1] = sample;
    else history.push(sample);
    const since = ms(sample.time) - 3600000;
    history = history.filter((s) => ms(s.time) >= since).slice(-MAX_SAMPLES);
    renderChart();
  },
};

function status(state, label) {
  const el = $("status");
  el.className = `status ${state}`;
  el.textContent = label;
}

function connect() {
  source = new EventSource("/v1/vips/stream");
  source.onopen = () => status("live", "live");
  source.onerror = () => {
    // EventSource retries by itself while it can; a refused answer closes it for good.
    status("reconnecting", "reconnecting…");
    if (source.readyState === EventSource.CLOSED) setTimeout(connect, 2000);
  };
  for (const [name, handle] of Object.entries(handlers)) {
    source.addEventListener(name, (event) => handle(JSON.parse(event.data)));
  }
}

connect();
setInterval(renderVips, 1000);
