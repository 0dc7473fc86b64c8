"""The static site's stylesheet and script (no external fonts, libraries or network requests)."""

CSS = """
:root { --ink: #1b1f24; --muted: #5b6470; --line: #d8dde3; --soft: #f4f6f8; --accent: #1f5fa8;
        --pub: #6b7280; --ok: #1e7d4f; --warn: #a35b00; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff;
       font: 15px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "Noto Sans", sans-serif; }
a { color: var(--accent); text-decoration: none; } a:hover { text-decoration: underline; }
header.site { border-bottom: 1px solid var(--line); background: linear-gradient(#fbfcfd, #f3f6f9); }
.wrap { max-width: 1380px; margin: 0 auto; padding: 0 24px; }
header.site .wrap { padding-top: 28px; padding-bottom: 22px; }
header.site.compact .wrap { padding-top: 16px; padding-bottom: 12px; }
header.site.compact h1 { font-size: 20px; }
h1 { font-size: 28px; margin: 0 0 4px; letter-spacing: -0.01em; }
h1 small { font-weight: 400; color: var(--muted); font-size: 17px; margin-left: 6px; }
h2 { font-size: 19px; margin: 34px 0 8px; }
h3 { font-size: 16px; margin: 22px 0 6px; }
.lede { color: var(--muted); max-width: 860px; margin: 4px 0 10px; }
.cite { font-size: 13.5px; color: var(--muted); }
.cite b { color: var(--ink); font-weight: 600; }
.controls { display: flex; flex-wrap: wrap; gap: 18px; align-items: center; margin: 20px 0 12px; }
.controls .label { font-size: 12px; text-transform: uppercase; letter-spacing: .06em; color: var(--muted); margin-right: 6px; }
.seg { display: inline-flex; border: 1px solid var(--line); border-radius: 7px; overflow: hidden; }
.seg button { border: 0; background: #fff; padding: 5px 12px; font: inherit; font-size: 13.5px; cursor: pointer;
              color: var(--ink); border-right: 1px solid var(--line); }
.seg button:last-child { border-right: 0; }
.seg button[aria-pressed="true"] { background: var(--accent); color: #fff; }
.downloads { margin-left: auto; font-size: 13.5px; }
.downloads a { margin-left: 12px; }
.tablebox { overflow-x: auto; border: 1px solid var(--line); border-radius: 8px; }
.tablebox.narrow { display: inline-block; max-width: 100%; }
table.board tbody tr.submitted { background: #f5fbf7; }
table.board { border-collapse: collapse; width: 100%; font-size: 13.5px; font-variant-numeric: tabular-nums; }
table.board th, table.board td { padding: 5px 7px; white-space: nowrap; }
table.board thead th { background: var(--soft); font-weight: 600; border-bottom: 1px solid var(--line); }
table.board thead tr.groups th { font-size: 12px; text-transform: uppercase; letter-spacing: .05em;
                                 color: var(--muted); border-bottom: 0; padding-bottom: 0; }
table.board thead tr.groups th.grp { border-bottom: 2px solid #b9c3ce; }
table.board thead th.sortable { cursor: pointer; user-select: none; }
table.board thead th.sortable:hover { color: var(--accent); }
table.board thead th .arrow { color: #9aa4af; font-size: 11px; margin-left: 3px; }
table.board thead th[aria-sort="ascending"] .arrow::after { content: "▲"; color: var(--accent); }
table.board thead th[aria-sort="descending"] .arrow::after { content: "▼"; color: var(--accent); }
table.board thead th:not([aria-sort]) .arrow::after { content: "↕"; }
table.board tbody tr { border-top: 1px solid #edf0f3; }
table.board tbody tr:hover { background: #f7fafc; }
table.board td.num { text-align: right; }
table.board.narrow { width: auto; min-width: 560px; }
details { margin: 6px 0 12px; font-size: 13.5px; }
details summary { cursor: pointer; color: var(--accent); }
.counts { font-size: 13.5px; color: var(--muted); margin: 14px 0 0; }
.counts b { color: var(--ink); }
table.board td.agg { background: #f8f9fb; }
table.board td.agg.first, table.board th.agg.first { border-left: 1px solid var(--line); }
table.board th.method, table.board td.method { text-align: left; }
/* the method column stays in view while a wide table scrolls sideways */
table.board th[data-key="method"], table.board td[data-key="method"] { position: sticky; left: 0; z-index: 1;
      box-shadow: inset -1px 0 0 var(--line); }
table.board tbody tr { background: #fff; }  /* opaque rows: the sticky cell takes its row's colour */
table.board td[data-key="method"] { background: inherit; }
table.board td.backbone { color: var(--muted); font-size: 13px; }
table.board .std { color: var(--muted); font-size: 11px; margin-left: 2px; }
table.board a.paper { font-size: 11.5px; color: var(--muted); margin-left: 3px; }
table.board a.paper:hover { color: var(--accent); }
table.board .best { font-weight: 700; }
table.board .second { text-decoration: underline; text-underline-offset: 2px; }
.badge { display: inline-block; font-size: 10.5px; line-height: 1; padding: 3px 6px; border-radius: 9px;
         margin-left: 6px; vertical-align: 1px; letter-spacing: .02em; font-weight: 600; }
.badge.published { background: #eef0f3; color: var(--pub); }
.badge.verified { background: #e3f3ea; color: var(--ok); }
.badge.partial { background: #fdf1e1; color: var(--warn); }
.badge.superseded { background: #fde8e8; color: #a12a2a; }
.note { font-size: 13px; color: var(--muted); max-width: 1000px; margin: 10px 0 0; }
.legend { font-size: 13px; color: var(--muted); margin-top: 8px; }
table.facts { border-collapse: collapse; font-size: 14px; margin: 6px 0 10px; }
table.facts th { text-align: left; color: var(--muted); font-weight: 500; padding: 4px 18px 4px 0; vertical-align: top; }
table.facts td { padding: 4px 0; }
table.plain { border-collapse: collapse; font-size: 13.5px; width: 100%; font-variant-numeric: tabular-nums; }
table.plain th, table.plain td { border-bottom: 1px solid #edf0f3; padding: 6px 10px 6px 0; text-align: left; vertical-align: top; }
table.plain th { color: var(--muted); font-weight: 600; font-size: 12.5px; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
pre { background: var(--soft); border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px;
      font-size: 12.5px; overflow-x: auto; }
footer { margin: 40px 0 30px; padding-top: 14px; border-top: 1px solid var(--line); font-size: 12.5px; color: var(--muted); }
.hidden-row { display: none; }
[hidden] { display: none !important; }
.crumbs { font-size: 13.5px; margin: 14px 0 6px; }
"""

JS = """
(function () {
  function num(td) {
    if (!td) return null;
    var v = td.getAttribute('data-v');
    if (v === null || v === '') return null;
    var f = parseFloat(v);
    return isNaN(f) ? v.toLowerCase() : f;
  }
  function sortBy(table, th) {
    var key = th.getAttribute('data-key');
    var best = th.getAttribute('data-best') || 'asc';
    var cur = th.getAttribute('aria-sort');
    var asc = cur ? cur !== 'ascending' : best === 'asc';
    table.querySelectorAll('thead th[aria-sort]').forEach(function (o) { o.removeAttribute('aria-sort'); });
    th.setAttribute('aria-sort', asc ? 'ascending' : 'descending');
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = num(a.querySelector('[data-key="' + key + '"]')), y = num(b.querySelector('[data-key="' + key + '"]'));
      if (x === null && y === null) return 0;
      if (x === null) return 1;   // missing values last, whichever the direction
      if (y === null) return -1;
      var c = x < y ? -1 : (x > y ? 1 : 0);
      return asc ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }
  function setView(view) {
    document.querySelectorAll('[data-views]').forEach(function (el) {
      el.hidden = el.getAttribute('data-views').split(' ').indexOf(view) < 0;
    });
    document.querySelectorAll('button[data-view]').forEach(function (b) {
      b.setAttribute('aria-pressed', b.getAttribute('data-view') === view ? 'true' : 'false');
    });
  }
  function setBackbone(family) {
    document.querySelectorAll('table.board tbody tr').forEach(function (tr) {
      var show = family === 'all' || tr.getAttribute('data-family') === family;
      tr.classList.toggle('hidden-row', !show);
    });
    document.querySelectorAll('button[data-backbone]').forEach(function (b) {
      b.setAttribute('aria-pressed', b.getAttribute('data-backbone') === family ? 'true' : 'false');
    });
  }
  document.addEventListener('DOMContentLoaded', function () {
    document.querySelectorAll('table.board').forEach(function (table) {
      table.querySelectorAll('thead th.sortable').forEach(function (th) {
        th.addEventListener('click', function () { sortBy(table, th); });
      });
    });
    document.querySelectorAll('button[data-view]').forEach(function (b) {
      b.addEventListener('click', function () { setView(b.getAttribute('data-view')); });
    });
    document.querySelectorAll('button[data-backbone]').forEach(function (b) {
      b.addEventListener('click', function () { setBackbone(b.getAttribute('data-backbone')); });
    });
    if (document.querySelector('button[data-view]')) setView('all');
  });
})();
"""
