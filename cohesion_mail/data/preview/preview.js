// The preview page: fetch /api/state, show it, and refresh whenever /events says the issue
// was rebuilt (a content or template file was saved). No framework, nothing remote.
"use strict";

const $ = (id) => document.getElementById(id);
const VIEWS = ["both", "desktop", "phone", "text"];
let current = -1;
let shownErrors = 0;

function setView(view, remember = true) {
  if (!VIEWS.includes(view)) view = "both";
  document.body.dataset.view = view;
  for (const b of document.querySelectorAll(".views button")) {
    b.setAttribute("aria-selected", String(b.dataset.view === view));
  }
  if (remember) {
    try { localStorage.setItem("cohesion-mail-view", view); } catch (e) { /* private mode */ }
    history.replaceState(null, "", view === "both" ? location.pathname : "#" + view);
  }
  fitDesktop();
}

function setStatus(state, text) {
  $("status").dataset.state = state;
  $("status-text").textContent = text;
}

function kb(bytes) { return (bytes / 1024).toFixed(1) + " KB"; }
function person(name, address) { return name ? `${name} <${address}>` : address; }

function render(s) {
  document.title = `${s.ok ? s.subject : "Build error"} — ${s.campaign} — preview`;
  $("campaign").textContent = s.campaign;
  $("from-name").textContent = s.from.name;
  $("from-address").textContent = `<${s.from.address}>`;
  $("avatar").textContent = (s.from.name || s.from.address || "?").trim().charAt(0).toUpperCase();
  $("to").textContent = person(s.to.name, s.to.email);
  $("reply-to").textContent = s.reply_to || "—";
  $("reply-to").parentElement.hidden = !s.reply_to;
  renderChecks(s.checks, s.campaign + "/");
  renderLanguages(s.languages || [], s.language);
  document.body.classList.toggle("broken", !s.ok);
  $("error").hidden = s.ok;
  if (!s.ok) {
    $("subject").textContent = s.subject || "(not built)";
    $("preheader").textContent = s.preheader || "";
    $("size").textContent = "—";
    renderError(s.error);
    setStatus("error", "Build error · waiting for a fix");
  } else {
    $("subject").textContent = s.subject;
    $("preheader").textContent = s.preheader;
    $("size").textContent = `${kb(s.html_bytes)} HTML (Gmail clips at 102 KB)`;
    for (const id of ["row", "mobile"]) {
      $(`${id}-from`).textContent = s.from.name || s.from.address;
      $(`${id}-subject`).textContent = s.subject;
      $(`${id}-preheader`).textContent = s.preheader;
    }
    $("text").textContent = s.text;
    reloadFrames(s.version);
    setStatus("live", "Live · updated " + s.built_at);
  }
  document.body.dataset.version = String(s.version);
}

function renderChecks(c, folder) {
  const box = $("checks");
  const list = $("findings");
  list.replaceChildren();
  if (!c) {
    box.dataset.level = "none";
    $("checks-badge").textContent = "…";
    $("checks-summary").textContent = "Preflight check did not run";
    return;
  }
  const e = c.errors, w = c.warnings;
  if (e && !shownErrors) box.open = true;  // new errors: show them; never close it for the reader
  shownErrors = e;
  box.dataset.level = e ? "error" : w ? "warning" : "ok";
  const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;
  $("checks-badge").textContent = e ? plural(e, "error") : w ? plural(w, "warning") : "✓ all clear";
  $("checks-summary").textContent = e
    ? `Preflight check: fix ${e === 1 ? "this" : "these"} before sending${w ? ` (and ${plural(w, "warning")})` : ""}`
    : `Preflight check: ready to send${w ? " · worth a look" : ""}`;
  for (const f of c.findings) {
    const li = document.createElement("li");
    li.className = f.level;
    const level = document.createElement("span");
    level.className = "level";
    level.textContent = f.level;
    const body = document.createElement("div");
    const where = document.createElement("div");
    where.className = "where";
    const file = f.file && f.file.startsWith(folder) ? f.file.slice(folder.length) : f.file;
    const field = file && file.endsWith(f.where) ? "" : f.where;
    where.textContent = [file && f.line ? `${file}:${f.line}` : file, field].filter(Boolean).join(" · ");
    const msg = document.createElement("div");
    msg.textContent = f.message;
    body.append(where, msg);
    const fix = document.createElement("div");
    fix.className = "fix";
    fix.textContent = f.fix;
    li.append(level, body, fix);
    list.append(li);
  }
}

function renderError(err) {
  $("error-message").textContent = err.message;
  const box = $("error-excerpts");
  box.replaceChildren();
  for (const loc of err.locations) {
    const wrap = document.createElement("div");
    wrap.className = "excerpt";
    const file = document.createElement("div");
    file.className = "file";
    file.textContent = `${loc.file}, line ${loc.line}`;
    const pre = document.createElement("pre");
    for (const l of loc.excerpt) {
      const line = document.createElement("span");
      line.className = "ln" + (l.here ? " here" : "");
      const n = document.createElement("span");
      n.textContent = l.number;
      line.append(n, document.createTextNode(l.text || " "));
      pre.append(line);
    }
    wrap.append(file, pre);
    box.append(wrap);
  }
}

function reloadFrames(version) {
  for (const frame of [$("desktop-frame"), $("phone-frame")]) {
    let y = 0;
    try { y = frame.contentWindow.scrollY || 0; } catch (e) { /* not loaded yet */ }
    frame.dataset.scroll = String(y);
    frame.src = "/email.html?v=" + version;
  }
}

function fitDesktop() {
  const frame = $("desktop-frame");
  try {
    const doc = frame.contentDocument;
    if (doc && doc.documentElement) {
      frame.style.height = Math.max(400, doc.documentElement.scrollHeight) + "px";
    }
  } catch (e) { /* cross-origin: keep the default height */ }
}

$("desktop-frame").addEventListener("load", fitDesktop);
$("phone-frame").addEventListener("load", (ev) => {
  const frame = ev.target;
  const y = Number(frame.dataset.scroll || 0);
  if (y) frame.contentWindow.scrollTo(0, y);
});

function renderLanguages(languages, shown) {
  // The editions: the main language and each campaign.<lang>.yaml. Choosing one asks the
  // server to rebuild in it; /events then refreshes this page like a save does.
  const select = $("language");
  $("language-picker").hidden = languages.length < 2;
  const options = languages.map((l) => `${l.code}:${l.name}`).join("|");
  if (select.dataset.options !== options) {
    select.dataset.options = options;
    select.replaceChildren(...languages.map((l) => new Option(`${l.name} (${l.code})`, l.code)));
  }
  if (shown) select.value = shown;
}

$("language").addEventListener("change", (ev) => {
  location.href = "/?lang=" + encodeURIComponent(ev.target.value) + location.hash;
});

async function refresh() {
  try {
    const r = await fetch("/api/state", { cache: "no-store" });
    const s = await r.json();
    if (s.version === current) return;
    current = s.version;
    render(s);
  } catch (e) {
    setStatus("connecting", "Preview server stopped? Start it again with cohesion-mail preview");
  }
}

function listen() {
  const events = new EventSource("/events");
  events.addEventListener("state", (ev) => {
    const data = JSON.parse(ev.data);
    if (data.version !== current) refresh();
  });
  events.onopen = () => refresh();
  events.onerror = () => setStatus("connecting", "Reconnecting to the preview server…");
}

for (const b of document.querySelectorAll(".views button")) {
  b.addEventListener("click", () => setView(b.dataset.view));
}
document.addEventListener("keydown", (ev) => {
  if (ev.target.closest && ev.target.closest("input, textarea")) return;
  const i = ["1", "2", "3", "4"].indexOf(ev.key);
  if (i >= 0 && !ev.ctrlKey && !ev.metaKey && !ev.altKey) setView(VIEWS[i]);
});
window.addEventListener("resize", fitDesktop);

let saved = location.hash.slice(1);
if (!saved) {
  try { saved = localStorage.getItem("cohesion-mail-view") || ""; } catch (e) { saved = ""; }
}
setView(saved || "both", false);
refresh();
listen();
