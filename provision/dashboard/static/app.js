// provkit line dashboard: renders the summary the server sends (first in the page, then as
// server-sent events) and a phone's history on search. Every value goes into the page through
// textContent: serials and reasons come from phones.
"use strict";

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const c of cells) {
    tr.appendChild(c instanceof Node ? c : el("td", c));
  }
  return tr;
}

function fill(id, rows, empty, cols) {
  const tbody = document.querySelector("#" + id + " tbody");
  tbody.replaceChildren();
  if (rows.length === 0) {
    const td = el("td", empty, "empty");
    td.colSpan = cols;
    tbody.appendChild(row([td]));
    return;
  }
  for (const r of rows) tbody.appendChild(r);
}

function dur(s) {
  s = Math.max(0, Math.round(s));
  if (s < 60) return s + " s";
  if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
  return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
}

function when(t) {
  const d = new Date(t);
  return isNaN(d) ? "" : d.toLocaleString();
}

function render(sum) {
  document.getElementById("c-pass").textContent = sum.today.pass;
  document.getElementById("c-fail").textContent = sum.today.fail;
  document.getElementById("c-error").textContent = sum.today.error;
  const n = sum.today.pass + sum.today.fail + sum.today.error;
  document.getElementById("c-rate").textContent = n ? (100 * sum.today.passRate).toFixed(1) + " %" : "–";
  document.getElementById("c-hour").textContent = sum.lastHour.total;
  document.getElementById("c-busy").textContent = sum.inProgress.length;
  const now = new Date(sum.generated);
  fill("stations", sum.stations.map(s => row([
    el("td", s.name, "serial"), el("td", s.status, "s-" + s.status), s.host, s.inProgress,
    s.today.pass, s.today.fail, s.today.error, dur((now - new Date(s.lastSeen)) / 1000) + " ago"])),
    "no station has written to this ledger yet", 8);
  fill("progress", sum.inProgress.map(d => row([el("td", d.serial, "serial"), d.station, d.step, dur(d.elapsedSeconds)])),
    "no phone in progress", 4);
  fill("failures", sum.latestFailures.map(f => row([when(f.time), el("td", f.serial, "serial"), f.station,
    el("td", f.verdict, "v-" + f.verdict), (f.reasons || []).join("; ")])), "no failure in the last 24 hours", 5);
  const hours = document.getElementById("hours");
  hours.replaceChildren();
  const max = Math.max(1, ...sum.perHour.map(h => h.total));
  for (const h of sum.perHour) {
    const bar = el("div");
    bar.style.height = (70 * h.total / max + 2) + "px";
    bar.title = new Date(h.hour).toLocaleString() + ": " + h.total + " phones, " + h.pass + " pass";
    const p = el("div", null, "p");
    p.style.height = (100 * h.pass / Math.max(1, h.total)) + "%";
    bar.appendChild(p);
    hours.appendChild(bar);
  }
}

async function search(serial) {
  const out = document.getElementById("history");
  out.replaceChildren(el("p", "loading…", "empty"));
  const resp = await fetch("/api/device?serial=" + encodeURIComponent(serial));
  if (!resp.ok) {
    out.replaceChildren(el("p", await resp.text(), "empty"));
    return;
  }
  const h = await resp.json();
  out.replaceChildren();
  out.appendChild(el("h3", "History of " + h.serial));
  if (h.verdicts.length === 0 && h.events.length === 0) {
    out.appendChild(el("p", "nothing recorded for this serial", "empty"));
    return;
  }
  const t = el("table");
  t.id = "verdicts";
  t.appendChild(row(["time", "verdict", "station", "reasons", "evidence"].map(x => el("th", x))));
  for (const v of h.verdicts.slice().reverse()) {
    const ev = el("td");
    const det = el("details");
    det.appendChild(el("summary", "evidence"));
    det.appendChild(el("pre", JSON.stringify(v.evidence, null, 2)));
    ev.appendChild(det);
    t.appendChild(row([when(v.time), el("td", v.verdict, "v-" + v.verdict), v.station, (v.reasons || []).join("; "), ev]));
  }
  out.appendChild(t);
  const et = el("table");
  et.appendChild(row(["time", "station", "event", "step", "detail"].map(x => el("th", x))));
  for (const e of h.events.slice().reverse()) {
    et.appendChild(row([when(e.time), e.station, e.kind, e.step || "", e.detail || ""]));
  }
  const d = el("details");
  d.appendChild(el("summary", h.events.length + " events"));
  d.appendChild(et);
  out.appendChild(d);
}

function connect() {
  const live = document.getElementById("live");
  const es = new EventSource("/api/events");
  es.addEventListener("summary", ev => {
    live.textContent = "live";
    live.className = "live on";
    render(JSON.parse(ev.data));
  });
  es.onerror = () => {
    live.textContent = "reconnecting…";
    live.className = "live off";
  };
}

document.addEventListener("DOMContentLoaded", () => {
  render(JSON.parse(document.body.dataset.initial));
  document.getElementById("search").addEventListener("submit", ev => {
    ev.preventDefault();
    const s = document.getElementById("serial").value.trim();
    if (s) search(s).catch(err => document.getElementById("history").replaceChildren(el("p", String(err), "empty")));
  });
  connect();
});
