// tagproc Topic Browser: the UNS tree from /api/topics kept live by the
// /api/events stream, a topic view (value, metadata, sparkline, history),
// the Drops and Rules panels. Read-only; no external resources.
'use strict';

const state = {
  topics: new Map(), // name -> {name, count, rate, value, seen (ms, local clock)}
  selected: null,
  expanded: new Set(),
  collapsed: new Set(),
  query: '',
  tab: 'topic',
  lastTopicFetch: 0,
};
const ACTIVE_MS = 5000;

const $ = (id) => document.getElementById(id);
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}[c]));
const fmtRate = (r) => (r >= 100 ? r.toFixed(0) : r >= 1 ? r.toFixed(1) : r > 0 ? r.toFixed(2) : '0') + '/s';
const fmtBytes = (b) => (b / 1048576).toFixed(1) + ' MB';
const fmtTime = (ms) => new Date(ms).toISOString().replace('T', ' ').replace('Z', '');

async function getJSON(url) {
  const r = await fetch(url, {cache: 'no-store'});
  if (!r.ok) throw new Error(url + ': ' + r.status);
  return r.json();
}

function mergeTopics(list, replace) {
  const now = Date.now();
  if (replace) state.topics.clear();
  for (const t of list) state.topics.set(t.name, {...t, seen: now - t.age_ms});
}

// ---------- pipeline strip ----------
function renderStrip(s) {
  const items = [
    ['in', fmtRate(s.rate_in || 0)], ['out', fmtRate(s.rate_out || 0)],
    ['received', s.received], ['processed', s.processed], ['dropped', s.dropped_total],
    ['queue', (s.queue.waiting + s.queue.processing_or_output) + ' / ' + s.queue.capacity],
    ['latency', (s.latency_ms || 0).toFixed(2) + ' ms'], ['RSS', fmtBytes(s.rss_bytes)],
    ['uptime', Math.round(s.uptime_s) + ' s'], ['config gen', s.config_generation],
    ['topics', s.topics], ['input → output', s.input + ' → ' + s.output],
  ];
  $('strip').innerHTML = items.map(([k, v]) => `<div><b>${esc(v)}</b><span>${esc(k)}</span></div>`).join('');
  const nonFiltered = s.dropped_total - (s.dropped.filtered || 0);
  $('drop-count').textContent = nonFiltered > 0 ? String(nonFiltered) : '';
}

// ---------- tree ----------
function buildTree() {
  const root = {children: new Map(), rate: 0, seen: 0, count: 0};
  for (const t of state.topics.values()) {
    const parts = t.name.split('.');
    let node = root;
    let path = '';
    for (const p of parts) {
      path = path ? path + '.' + p : p;
      if (!node.children.has(p)) node.children.set(p, {name: p, path, children: new Map(), rate: 0, seen: 0, count: 0});
      node = node.children.get(p);
      node.rate += t.rate || 0;
      node.seen = Math.max(node.seen, t.seen);
      node.count += t.count;
    }
    node.topic = t;
  }
  return root;
}

function isOpen(node, depth, total) {
  if (state.collapsed.has(node.path)) return false;
  if (state.expanded.has(node.path) || state.query) return true;
  return total <= 500 || depth < 3;
}

function renderNode(node, depth, total, now) {
  const kids = [...node.children.values()].sort((a, b) => a.name.localeCompare(b.name));
  const leaf = node.topic && kids.length === 0;
  const open = !leaf && isOpen(node, depth, total);
  const active = now - node.seen < ACTIVE_MS;
  const cls = ['node', leaf ? 'leaf' : 'branch', node.topic && node.topic.name === state.selected ? 'selected' : ''].join(' ');
  let h = `<li><div class="${cls}" data-path="${esc(node.path)}"${node.topic ? ` data-topic="${esc(node.topic.name)}"` : ''}>` +
    `<span class="twisty">${leaf ? '' : open ? '▾' : '▸'}</span><span class="dot${active ? ' active' : ''}" title="${active ? 'active in the last 5 s' : 'idle'}"></span>` +
    `<span class="name">${esc(node.name)}</span>` +
    (node.topic ? `<span class="value">${esc(node.topic.value)}</span>` : '') +
    `<span class="rate">${fmtRate(node.rate)}</span></div>`;
  if (open && kids.length) h += '<ul>' + kids.map((k) => renderNode(k, depth + 1, total, now)).join('') + '</ul>';
  return h + '</li>';
}

function renderTree() {
  const root = buildTree();
  const total = state.topics.size;
  const now = Date.now();
  const kids = [...root.children.values()].sort((a, b) => a.name.localeCompare(b.name));
  $('tree').innerHTML = '<ul>' + kids.map((k) => renderNode(k, 0, total, now)).join('') + '</ul>';
  $('tree-info').textContent = `${total} topic${total === 1 ? '' : 's'}` + (state.query ? ` matching “${state.query}”` : '');
}

let reloadSeq = 0;
async function reloadTopics() {
  const seq = ++reloadSeq;
  const q = state.query ? '?q=' + encodeURIComponent(state.query) : '';
  const data = await getJSON('/api/topics' + q);
  if (seq !== reloadSeq) return; // a newer request (another search) wins
  mergeTopics(data.topics, true);
  renderTree();
}

// ---------- topic view ----------
function sparkline(points) {
  const nums = points.filter((p) => typeof p.value === 'number');
  if (nums.length === 0) return '<p class="muted">No numeric values to plot.</p>';
  const w = 600, h = 90, pad = 6;
  let lo = Math.min(...nums.map((p) => p.value)), hi = Math.max(...nums.map((p) => p.value));
  if (hi === lo) { hi += 1; lo -= 1; }
  const xy = nums.map((p, i) => [
    pad + (nums.length === 1 ? (w - 2 * pad) / 2 : (i * (w - 2 * pad)) / (nums.length - 1)),
    h - pad - ((p.value - lo) * (h - 2 * pad)) / (hi - lo)]);
  const pts = xy.map(([x, y]) => x.toFixed(1) + ',' + y.toFixed(1)).join(' ');
  return `<svg id="sparkline" viewBox="0 0 ${w} ${h}" preserveAspectRatio="none" data-points="${nums.length}">` +
    `<polyline points="${pts}"></polyline>` + xy.map(([x, y]) => `<circle cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="2"></circle>`).join('') +
    `</svg><div class="muted">${nums.length} points, min ${lo} max ${hi}</div>`;
}

async function showTopic(name) {
  state.selected = name;
  state.lastTopicFetch = Date.now();
  let t;
  try {
    t = await getJSON('/api/topic?name=' + encodeURIComponent(name));
  } catch (e) {
    $('topic-view').innerHTML = `<p class="err">${esc(e.message)}</p>`;
    return;
  }
  const last = t.history.length ? t.history[t.history.length - 1] : null;
  const meta = Object.entries(t.meta).map(([k, v]) => `<tr><th>${esc(k)}</th><td class="mono">${esc(v)}</td></tr>`).join('');
  const hist = t.history.slice().reverse().map((p) => `<tr><td>${esc(fmtTime(p.t))}</td><td class="mono">${esc(p.text)}</td></tr>`).join('');
  $('topic-view').innerHTML =
    `<div class="card"><div class="mono">${esc(t.name)}</div>` +
    `<div id="topic-value" class="big">${esc(last ? last.text : t.payload)}</div>` +
    `<div class="muted">${last ? 'timestamp ' + esc(fmtTime(last.t)) + ' · ' : ''}received ${esc(fmtTime(t.received_ms))} · ${t.count} messages · ${fmtRate(t.rate)}</div></div>` +
    `<div class="card"><h3>Recent values (last ${t.history.length} of at most ${t.history_max})</h3>${sparkline(t.history)}</div>` +
    `<div class="card"><h3>Payload</h3><code id="topic-payload">${esc(t.payload)}</code></div>` +
    `<div class="card"><h3>Metadata</h3><table id="topic-meta">${meta}</table></div>` +
    `<div class="card"><h3>History</h3><table id="topic-history"><tr><th>time</th><th>value</th></tr>${hist}</table></div>`;
  if (state.tab !== 'topic') selectTab('topic');
  renderTree();
}

// ---------- drops and rules ----------
async function renderDrops() {
  const d = await getJSON('/api/drops');
  const reasons = Object.entries(d.by_reason).filter(([, n]) => n > 0);
  let h = '<div class="card"><h3>Drops by reason</h3><table id="drops-by-reason"><tr><th>reason</th><th>count</th></tr>' +
    (reasons.length ? reasons.map(([r, n]) => `<tr><td>${esc(r)}</td><td class="num">${n}</td></tr>`).join('') : '<tr><td colspan="2" class="muted">no drops</td></tr>') + '</table></div>';
  if (d.by_stage.length) {
    h += '<div class="card"><h3>By processor, stage and rule</h3><table><tr><th>reason</th><th>processor</th><th>stage</th><th>rule</th><th>count</th></tr>' +
      d.by_stage.map((s) => `<tr><td>${esc(s.reason)}</td><td class="mono">${esc(s.processor)}</td><td class="mono">${esc(s.stage)}</td><td class="mono">${esc(s.rule)}</td><td class="num">${s.count}</td></tr>`).join('') + '</table></div>';
  }
  for (const [reason, list] of Object.entries(d.recent)) {
    h += `<div class="card drop-reason" data-reason="${esc(reason)}"><h3>Last ${list.length} <code>${esc(reason)}</code> drops</h3><table><tr><th>time</th><th>stage</th><th>error</th><th>input metadata</th><th>payload</th></tr>` +
      list.map((x) => `<tr class="drop"><td>${esc(fmtTime(x.time_ms))}</td><td class="mono">${esc(x.stage)}</td><td class="err mono">${esc(x.error)}</td>` +
        `<td class="mono">${esc(JSON.stringify(x.meta))}</td><td class="mono">${esc(x.payload)}</td></tr>`).join('') + '</table></div>';
  }
  $('drops').innerHTML = h;
}

async function renderRules() {
  const d = await getJSON('/api/rules');
  const rows = d.rules.filter((r) => r.rule !== null);
  $('rules').innerHTML = '<div class="card"><h3>Rules</h3><table id="rules-table"><tr><th>processor</th><th>rule</th><th>evaluations</th><th>matches</th><th>errors</th><th>timeouts</th><th>time</th></tr>' +
    (rows.length ? rows.map((r) => `<tr><td class="mono">${esc(r.processor)}</td><td class="mono">${esc(r.rule)}</td><td class="num">${r.evaluations}</td><td class="num">${r.matches}</td>` +
      `<td class="num${r.errors ? ' err' : ''}">${r.errors}</td><td class="num">${r.timeouts}</td><td class="num">${(r.time_s * 1000).toFixed(1)} ms</td></tr>`).join('')
      : '<tr><td colspan="7" class="muted">no per-rule counters</td></tr>') + '</table></div>';
}

function selectTab(tab) {
  state.tab = tab;
  for (const b of document.querySelectorAll('.tabs button')) b.classList.toggle('active', b.dataset.tab === tab);
  for (const p of ['topic', 'drops', 'rules']) $('panel-' + p).classList.toggle('hidden', p !== tab);
  if (tab === 'drops') renderDrops().catch(() => {});
  if (tab === 'rules') renderRules().catch(() => {});
}

// ---------- live updates ----------
function onEvent(ev) {
  const d = JSON.parse(ev.data);
  renderStrip(d.stats);
  if (state.query) {
    // a search is answered by the server (metadata lives there): refresh it
    reloadTopics().catch(() => {});
  } else if (d.resync) {
    reloadTopics().catch(() => {});
  } else {
    mergeTopics(d.topics, false);
    renderTree();
  }
  if (state.selected && state.tab === 'topic' && Date.now() - state.lastTopicFetch > 900) showTopic(state.selected);
  if (state.tab === 'drops') renderDrops().catch(() => {});
  if (state.tab === 'rules') renderRules().catch(() => {});
}

function init() {
  // mousedown, not click: the tree is redrawn every second, and a click whose
  // mouseup lands on a redrawn node would be lost
  $('tree').addEventListener('mousedown', (e) => {
    const n = e.button === 0 && e.target.closest('.node');
    if (!n) return;
    if (n.dataset.topic && n.classList.contains('leaf')) {
      showTopic(n.dataset.topic);
      return;
    }
    const path = n.dataset.path;
    const wasOpen = n.querySelector('.twisty').textContent === '▾';
    if (wasOpen) { state.collapsed.add(path); state.expanded.delete(path); } else { state.expanded.add(path); state.collapsed.delete(path); }
    if (n.dataset.topic) showTopic(n.dataset.topic);
    renderTree();
  });
  let timer = null;
  $('search').addEventListener('input', (e) => {
    clearTimeout(timer);
    timer = setTimeout(() => { state.query = e.target.value.trim(); reloadTopics().catch(() => {}); }, 150);
  });
  for (const b of document.querySelectorAll('.tabs button')) b.addEventListener('click', () => selectTab(b.dataset.tab));
  reloadTopics().catch(() => {});
  getJSON('/api/stats').then(renderStrip).catch(() => {});
  const es = new EventSource('/api/events');
  es.onmessage = onEvent;
}

init();
