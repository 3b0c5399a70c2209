"""The review page: one self-contained HTML file (no server, nothing fetched:
styles and script inline, system fonts), readable offline from ``file://``.

The data is embedded once as JSON; the file list is drawn at load and a file's
rows only when it is opened, so a site of thousands of files opens at once.
Every document text reaches the page through ``textContent``, never as HTML.
"""

from __future__ import annotations

import html
import json

from pipeline import flags
from pipeline.review import Review

CSS = """
:root { --bad: #b42318; --warn: #b54708; --ok: #067647; --muted: #667085; --line: #eaecf0; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: #101828; background: #f9fafb; }
header { padding: 10px 16px; background: #fff; border-bottom: 1px solid var(--line); }
h1 { font-size: 17px; margin: 0 0 2px; }
.meta { color: var(--muted); font-size: 12px; }
#totals { display: flex; flex-wrap: wrap; gap: 6px; margin: 8px 0 0; padding: 0; }
#totals li { list-style: none; border: 1px solid var(--line); border-radius: 6px; padding: 3px 8px;
  background: #fff; }
#totals b { font-size: 15px; margin-right: 4px; }
.controls { display: flex; flex-wrap: wrap; gap: 8px; align-items: center; padding: 8px 16px;
  background: #fff; border-bottom: 1px solid var(--line); position: sticky; top: 0; z-index: 2; }
.controls input[type=search] { width: 260px; padding: 4px 6px; }
.controls button { padding: 4px 10px; }
main { display: grid; grid-template-columns: minmax(220px, 300px) 1fr; min-height: 70vh; }
#files { margin: 0; padding: 0; overflow: auto; max-height: calc(100vh - 150px);
  border-right: 1px solid var(--line); background: #fff; }
#files li { list-style: none; padding: 6px 10px; border-bottom: 1px solid var(--line);
  cursor: pointer; }
#files li.open { background: #eef4ff; }
#files li .name { display: block; word-break: break-all; }
#view { padding: 8px 16px; overflow: auto; }
table { border-collapse: collapse; width: 100%; table-layout: fixed; background: #fff; }
td, th { border: 1px solid var(--line); padding: 6px 8px; vertical-align: top; text-align: left;
  white-space: pre-wrap; word-wrap: break-word; }
th { background: #f2f4f7; font-weight: 600; }
col.label { width: 120px; } col.act { width: 150px; }
tr.code td.src { color: var(--muted); font-family: ui-monospace, monospace; font-size: 12px; }
tr.s-kept td, tr.s-missing td { background: #fef3f2; }
tr.s-edited td { background: #fffaeb; }
tr.s-reviewed td.dst { background: #ecfdf3; }
tr.flagged td { outline: 2px solid var(--bad); outline-offset: -2px; }
.badge { display: inline-block; font-size: 11px; border-radius: 9px; padding: 0 7px;
  border: 1px solid currentColor; margin: 0 4px 2px 0; white-space: nowrap; }
.b-missing, .b-kept, .b-failed, .b-broken, .b-rejected, .b-conflict, .b-incomplete
  { color: var(--bad); }
.b-edited, .b-stale, .b-untracked { color: var(--warn); }
.b-reviewed, .b-current { color: var(--ok); }
.b-translated, .b-memory, .b-verbatim { color: var(--muted); }
.why { margin-top: 6px; font-size: 12px; color: var(--bad); }
.why .answer { color: #344054; display: block; border-left: 3px solid var(--bad);
  padding-left: 6px; margin: 2px 0; }
td.act button { font-size: 12px; margin: 0 4px 4px 0; }
td.act input { width: 100%; font-size: 12px; }
.empty { color: var(--muted); padding: 20px; }
#export-json { display: none; }
"""

JS = r"""
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("review-data").textContent);
  const $ = (id) => document.getElementById(id);
  const STORE = "translate-dir-review:" + data.title;
  let marks = {};  // key -> {action: "flag"|"accept", note, source, lang, text}
  try { marks = JSON.parse(localStorage.getItem(STORE) || "{}"); } catch (e) { marks = {}; }
  let open = null;

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }
  function badge(state, text) { return el("span", "badge b-" + state, text || state); }
  function save() {
    try { localStorage.setItem(STORE, JSON.stringify(marks)); } catch (e) { /* file:// */ }
    const n = (a) => Object.values(marks).filter((m) => m.action === a).length;
    $("export-flags").textContent = "Export flags (" + n("flag") + ")";
    $("export-accepted").textContent = "Export accepted (" + n("accept") + ")";
  }

  const LABELS = {files: "files", pieces: "pieces", translated: "translated",
    memory: "from memory", kept: "kept in source", edited: "edited by hand",
    missing: "failed / missing", reviewed: "reviewed", rejected: "with rejected answers",
    broken: "broken links"};
  for (const [k, label] of Object.entries(LABELS)) {
    const li = el("li"); li.dataset.total = k;
    li.append(el("b", "", String(data.totals[k] || 0)), label);
    $("totals").append(li);
  }

  function rowState(r) {
    const states = [r[4]];
    if (r[6].length) states.push("rejected");
    if (r[7].length) states.push("broken");
    if (marks[r[5]] && marks[r[5]].action === "flag") states.push("flagged");
    return states;
  }
  function query() { return $("search").value.trim().toLowerCase(); }
  function rowMatches(r, want, q) {
    if (r[0] === "code") return !want && !q;
    if (want && rowState(r).indexOf(want) < 0) return false;
    if (q && (r[2] + "\n" + (r[3] || "")).toLowerCase().indexOf(q) < 0) return false;
    return true;
  }
  function fileMatches(f) {
    const fs = $("file-status").value, want = $("piece-state").value, q = query();
    if (fs && f.status !== fs) return false;
    if (!want && !q) return true;
    if (q && f.source.toLowerCase().indexOf(q) >= 0 && !want) return true;
    return f.rows.some((r) => r[0] !== "code" && rowMatches(r, want, q));
  }

  function drawFiles() {
    const list = $("files");
    list.textContent = "";
    let shown = 0;
    data.files.forEach((f, i) => {
      if (!fileMatches(f)) return;
      shown++;
      const li = el("li");
      li.dataset.index = i; li.dataset.source = f.source; li.dataset.status = f.status;
      if (open === i) li.classList.add("open");
      li.append(el("span", "name", f.source + (data.langs > 1 ? " (" + f.lang + ")" : "")));
      li.append(badge(f.status));
      for (const s of ["missing", "kept", "edited", "reviewed"]) {
        if (f.counts[s]) li.append(badge(s, f.counts[s] + " " + s));
      }
      if (f.rejected) li.append(badge("rejected", f.rejected + " rejected"));
      if (f.broken) li.append(badge("broken", f.broken + " broken link"));
      li.addEventListener("click", () => { open = i; drawFiles(); drawFile(); });
      list.append(li);
    });
    $("file-count").textContent = shown + " of " + data.files.length + " files";
  }

  const WHY = {
    kept: "Kept in the source language: every answer failed the checks.",
    missing: "No translation stored: the backend failed on it, or it was never translated.",
    edited: "The output no longer holds this translation: edited by hand.",
  };
  function why(r) {
    const box = el("div", "why");
    const says = WHY[r[4]];
    if (says) box.append(el("div", "", says));
    for (const rej of r[6]) {
      box.append(el("div", "", "Rejected (" + rej.checks.join("; ") + "):"));
      box.append(el("span", "answer", rej.answer));
    }
    for (const link of r[7]) box.append(el("div", "", "Link no longer resolves: " + link));
    return box.childNodes.length ? box : null;
  }

  function mark(r, action, note) {
    const key = r[5], f = data.files[open];
    if (marks[key] && marks[key].action === action && note === undefined) delete marks[key];
    else marks[key] = {action: action, note: note || (marks[key] ? marks[key].note : "") || "",
                       source: f.source, lang: f.lang, text: r[2]};
    save();
  }

  function drawFile() {
    const view = $("view");
    view.textContent = "";
    if (open === null) { view.append(el("div", "empty", "Choose a file on the left.")); return; }
    const f = data.files[open];
    const head = el("h2", "", f.source + " → " + f.output);
    head.style.fontSize = "15px";
    view.append(head);
    const info = el("div", "meta");
    info.append(badge(f.status), f.message || "");
    if (f.why && f.why.length) info.append(" Kept because: " + f.why.join("; "));
    view.append(info);
    const want = $("piece-state").value, q = query();
    const table = el("table");
    table.id = "rows";
    const cols = el("colgroup");
    for (const c of ["label", "", "", "act"]) { const col = el("col", c); cols.append(col); }
    table.append(cols);
    const hr = el("tr");
    for (const t of ["", "source", "translation", "review"]) hr.append(el("th", "", t));
    table.append(hr);
    let shown = 0;
    for (const r of f.rows) {
      if (!rowMatches(r, want, q)) continue;
      shown++;
      const tr = el("tr", r[0] === "code" ? "code" : "s-" + r[4]);
      tr.dataset.key = r[5]; tr.dataset.state = r[4];
      if (marks[r[5]] && marks[r[5]].action === "flag") tr.classList.add("flagged");
      const label = el("td", "label");
      label.append(el("div", "", r[0] === "field" ? "front matter " + r[1] : r[1]));
      if (r[0] !== "code") for (const s of rowState(r)) label.append(badge(s));
      tr.append(label);
      if (r[0] === "code") {
        const td = el("td", "src", r[2]); td.colSpan = 2; tr.append(td); tr.append(el("td"));
        table.append(tr); continue;
      }
      tr.append(el("td", "src", r[2]));
      const dst = el("td", "dst", r[4] === "kept" ? r[2] : (r[3] === null ? "" : r[3]));
      const w = why(r);
      if (w) dst.append(w);
      tr.append(dst);
      const act = el("td", "act");
      const m = marks[r[5]];
      const flag = el("button", "flag", m && m.action === "flag" ? "Unflag" : "Flag");
      const ok = el("button", "accept", m && m.action === "accept" ? "Accepted ✓" : "Accept");
      flag.addEventListener("click", () => { mark(r, "flag"); drawFile(); drawFiles(); });
      ok.addEventListener("click", () => { mark(r, "accept"); drawFile(); });
      act.append(flag, ok);
      if (m && m.action === "flag") {
        const note = el("input", "note");
        note.placeholder = "note for the model (optional)";
        note.value = m.note || "";
        note.addEventListener("input", () => { mark(r, "flag", note.value); });
        act.append(note);
      }
      tr.append(act);
      table.append(tr);
    }
    view.append(table);
    if (!shown) view.append(el("div", "empty", "No piece of this file matches the filters."));
  }

  function exportMarks(action, name) {
    const items = Object.entries(marks).filter(([, m]) => m.action === action).map(([key, m]) =>
      ({source: m.source, lang: m.lang, key: key, text: m.text, note: m.note || ""}));
    const text = JSON.stringify({format: __FORMAT__, version: __VERSION__, flags: items}, null, 1);
    $("export-json").value = text;
    $("export-json").dataset.kind = action;
    const a = el("a");
    a.href = URL.createObjectURL(new Blob([text], {type: "application/json"}));
    a.download = name;
    document.body.append(a); a.click(); a.remove();
  }

  $("export-flags").addEventListener("click", () => exportMarks("flag", "flags.json"));
  $("export-accepted").addEventListener("click", () => exportMarks("accept", "accepted.json"));
  for (const id of ["file-status", "piece-state"]) {
    $(id).addEventListener("change", () => { drawFiles(); drawFile(); });
  }
  let timer = null;
  $("search").addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => { drawFiles(); drawFile(); }, 120);
  });
  const statuses = [...new Set(data.files.map((f) => f.status))].sort();
  for (const s of statuses) $("file-status").append(new Option(s, s));
  const first = data.files.findIndex(
    (f) => f.worst === "missing" || f.worst === "kept" || f.broken);
  open = data.files.length ? Math.max(first, 0) : null;
  save(); drawFiles(); drawFile();
  document.body.dataset.ready = "1";
  window.reviewReadyMs = performance.now();  // for bench/review.py
})();
"""

STATE_OPTIONS = (
    ("", "every piece"),
    ("missing", "failed / missing"),
    ("kept", "kept in source"),
    ("edited", "edited by hand"),
    ("rejected", "with rejected answers"),
    ("broken", "broken links"),
    ("flagged", "flagged"),
    ("translated", "translated"),
    ("memory", "from memory"),
    ("reviewed", "reviewed"),
)


def render(review: Review) -> str:
    """The whole page as one string."""
    data = review.to_json()
    data["langs"] = len({f["lang"] for f in review.files})
    # Inside <script>, only "</" could end the block early: JSON's \u003c cannot.
    blob = json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")
    script = JS.replace("__FORMAT__", json.dumps(flags.FORMAT)).replace(
        "__VERSION__", str(flags.VERSION)
    )
    options = "".join(
        f'<option value="{v}">{html.escape(label)}</option>' for v, label in STATE_OPTIONS
    )
    title = html.escape(review.title)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; \
style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<title>{title}</title>
<style>{CSS}</style>
</head>
<body>
<header>
<h1>{title}</h1>
<div class="meta">Generated {html.escape(review.generated)} from the manifest and the \
translation memory ({html.escape(review.model)}). Flag what is wrong, export the flags, then run \
<code>translate-dir INPUT --to LANG --retranslate flags.json</code>.</div>
<ul id="totals"></ul>
</header>
<div class="controls">
<label>File status <select id="file-status"><option value="">any</option></select></label>
<label>Pieces <select id="piece-state">{options}</select></label>
<input id="search" type="search" placeholder="search the text or file names">
<span id="file-count" class="meta"></span>
<button id="export-flags" type="button">Export flags</button>
<button id="export-accepted" type="button">Export accepted</button>
<textarea id="export-json" readonly></textarea>
</div>
<main>
<ul id="files"></ul>
<section id="view"></section>
</main>
<script id="review-data" type="application/json">{blob}</script>
<script>{script}</script>
</body>
</html>
"""
