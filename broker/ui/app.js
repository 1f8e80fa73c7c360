// mq dashboard (docs/http.md, "Dashboard"): a client of mqd's JSON API.
//
// Every call is POST /v1/<Method> with the JSON form of the request
// message; with authentication on, the token from sessionStorage goes in
// "Authorization: Bearer". Nothing shown is ever parsed as HTML: text goes
// in with textContent / text nodes only (payloads are user data).
//
// Views (location.hash):
//   #/                               queues, depths and rates (live)
//   #/q/NAME?state=S&after=ID        a queue's messages in state S, one page
//   #/q/NAME/m/ID                    one message
'use strict';

const POLL_MS = 1000; // queue counts and rates
const PAGE_SIZE = 50; // messages per page (ListMessages limit)
const RATE_WINDOW_MS = 10000; // rates average over this much history
const TOKEN_KEY = 'mq.token';
const MAX_QUEUE_PAGES = 100; // ListQueues pages of 1000 per poll
const MAX_REDRIVE_CALLS = 1000; // Redrive calls of 10000 per "redrive all"
const PURGE_STEP = 10000; // messages per PurgeQueue call
const MAX_PURGE_CALLS = 100000; // PurgeQueue calls per purge
const MAX_SCAN_CALLS = 20; // ListMessages calls to find one page of a sparse state

const STATES = {
  ready: { api: 'STATE_READY', label: 'ready', stat: 'ready' },
  delayed: { api: 'STATE_DELAYED', label: 'delayed', stat: 'delayed' },
  leased: { api: 'STATE_LEASED', label: 'in flight', stat: 'in_flight' },
  dead: { api: 'STATE_DEAD', label: 'dead', stat: 'dead' },
  all: { api: 'STATE_UNSPECIFIED', label: 'all', stat: null },
};
const STATE_NAMES = {
  STATE_READY: 'ready',
  STATE_DELAYED: 'delayed',
  STATE_LEASED: 'in flight',
  STATE_DEAD: 'dead',
};
const OUTCOMES = {
  OUTCOME_NACKED: 'nacked',
  OUTCOME_EXPIRED: 'lease expired',
  OUTCOME_TERMED: 'termed',
};

// ---- DOM helpers ----------------------------------------------------------

const byId = (id) => document.getElementById(id);

// el builds an element; strings among kids become text nodes (never HTML).
function el(tag, props, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const kid of kids.flat()) {
    if (kid === undefined || kid === null || kid === false) continue;
    e.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return e;
}

function setText(node, text) {
  const s = String(text);
  if (node.textContent !== s) node.textContent = s;
}

function show(node, visible) {
  node.hidden = !visible;
}

const num = (v) => Number(v || 0);
const fmtCount = (v) => num(v).toLocaleString('en-US');

function fmtRate(r) {
  if (r === null) return '–';
  if (r === 0) return '0';
  return r >= 100 ? Math.round(r).toLocaleString('en-US') : r.toFixed(1);
}

function fmtDuration(ms) {
  ms = num(ms);
  if (ms < 1000) return `${ms} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.floor(s % 60)} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

function fmtTime(ms) {
  ms = num(ms);
  if (ms === 0) return '–';
  return new Date(ms).toISOString().replace('T', ' ').replace('Z', ' UTC');
}

// ---- Payloads ----------------------------------------------------------------

function b64bytes(b64) {
  try {
    const bin = atob(b64 || '');
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  } catch {
    return new Uint8Array(0);
  }
}

// payloadText returns the payload as text when it is UTF-8, else null.
function payloadText(bytes) {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return null;
  }
}

function hexDump(bytes, max) {
  const lines = [];
  const n = Math.min(bytes.length, max);
  for (let off = 0; off < n; off += 16) {
    const row = bytes.subarray(off, Math.min(off + 16, n));
    const hex = Array.from(row, (b) => b.toString(16).padStart(2, '0')).join(' ');
    const asc = Array.from(row, (b) => (b >= 32 && b < 127 ? String.fromCharCode(b) : '.')).join('');
    lines.push(`${off.toString(16).padStart(8, '0')}  ${hex.padEnd(47)}  ${asc}`);
  }
  if (bytes.length > max) lines.push(`... ${bytes.length - max} more bytes`);
  return lines.join('\n');
}

function payloadPreview(b64) {
  const bytes = b64bytes(b64);
  const text = payloadText(bytes);
  if (text === null) return `(${bytes.length} bytes, binary)`;
  const flat = text.replace(/\s+/g, ' ');
  return flat.length > 80 ? flat.slice(0, 80) + '…' : flat;
}

// ---- API -----------------------------------------------------------------------

class ApiError extends Error {
  constructor(http, status, message) {
    super(message);
    this.http = http;
    this.status = status;
  }
}

async function api(method, body) {
  const headers = { 'Content-Type': 'application/json' };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = `Bearer ${token}`;
  let res;
  try {
    res = await fetch(`/v1/${method}`, {
      method: 'POST',
      headers,
      body: JSON.stringify(body || {}),
      cache: 'no-store',
      credentials: 'omit',
    });
  } catch (e) {
    throw new ApiError(0, 'UNAVAILABLE', `mqd is unreachable (${e.message})`);
  }
  let j = null;
  try {
    j = await res.json();
  } catch {
    j = null;
  }
  if (!res.ok) {
    const err = new ApiError(
      res.status,
      (j && j.status) || `HTTP ${res.status}`,
      (j && j.message) || res.statusText || 'request failed',
    );
    if (res.status === 401) needLogin(err);
    throw err;
  }
  return j || {};
}

// ---- Banners -------------------------------------------------------------------

let noticeTimer = null;

function notice(text) {
  const n = byId('notice');
  n.textContent = text;
  show(n, true);
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => show(n, false), 8000);
}

function showError(e) {
  if (e instanceof ApiError && e.http === 401) return; // the login form says it
  const n = byId('error');
  n.textContent = e instanceof ApiError ? `${e.status}: ${e.message}` : String(e.message || e);
  show(n, true);
}

function clearError() {
  show(byId('error'), false);
}

function setConn(ok, text) {
  const c = byId('conn');
  setText(c, text);
  c.classList.toggle('ok', ok);
  c.classList.toggle('bad', !ok);
}

// ---- Confirmation dialog ---------------------------------------------------------

let confirmResolve = null;

// confirmAction shows the dialog; resolves true on Confirm, false otherwise.
function confirmAction(title, text, okLabel) {
  const d = byId('confirm');
  setText(byId('confirm-title'), title);
  setText(byId('confirm-text'), text);
  setText(byId('confirm-ok'), okLabel);
  if (confirmResolve) confirmResolve(false);
  return new Promise((resolve) => {
    confirmResolve = resolve;
    d.showModal();
    byId('confirm-cancel').focus();
  });
}

function confirmDone(value) {
  const d = byId('confirm');
  if (d.open) d.close();
  if (confirmResolve) {
    const r = confirmResolve;
    confirmResolve = null;
    r(value);
  }
}

// ---- Login ------------------------------------------------------------------------

let loginShown = false;

function needLogin(err) {
  const had = sessionStorage.getItem(TOKEN_KEY) !== null;
  loginShown = true;
  stopPolling();
  for (const v of ['view-queues', 'view-queue', 'view-message']) show(byId(v), false);
  show(byId('login'), true);
  show(byId('logout'), false);
  clearError();
  setConn(false, 'signed out');
  const le = byId('login-error');
  if (had) {
    sessionStorage.removeItem(TOKEN_KEY);
    le.textContent = `The token was refused: ${err.message}`;
    show(le, true);
  } else {
    show(le, false);
  }
  byId('token').focus();
}

async function onLogin(ev) {
  ev.preventDefault();
  const input = byId('token');
  const token = input.value.trim();
  if (token === '') return;
  sessionStorage.setItem(TOKEN_KEY, token);
  input.value = '';
  show(byId('login-error'), false);
  loginShown = false;
  show(byId('login'), false);
  await start();
}

function onLogout() {
  sessionStorage.removeItem(TOKEN_KEY);
  location.hash = '#/';
  needLogin(new ApiError(401, 'UNAUTHENTICATED', 'signed out'));
}

// ---- Rates --------------------------------------------------------------------------

const samples = new Map(); // queue name -> [{t, pushed, acked}]

function addSample(q) {
  const s = q.stats || {};
  const now = performance.now();
  const cur = { t: now, pushed: num(s.pushed_total), acked: num(s.acked_total) };
  let list = samples.get(q.name) || [];
  const last = list[list.length - 1];
  if (last && (cur.pushed < last.pushed || cur.acked < last.acked)) list = []; // restarted
  list.push(cur);
  // Keep the window, and always one sample before the newest.
  while (list.length > 2 && now - list[1].t >= RATE_WINDOW_MS) list.shift();
  samples.set(q.name, list);
}

// rates: per second over the kept samples; null until there are two.
function rates(name) {
  const list = samples.get(name);
  if (!list || list.length < 2) return { push: null, ack: null };
  const a = list[0];
  const b = list[list.length - 1];
  const dt = (b.t - a.t) / 1000;
  if (dt <= 0) return { push: null, ack: null };
  return { push: (b.pushed - a.pushed) / dt, ack: (b.acked - a.acked) / dt };
}

// ---- Routing ----------------------------------------------------------------------

let route = { view: 'queues' };

function parseHash() {
  const h = location.hash.replace(/^#/, '') || '/';
  const [path, query] = h.split('?');
  const params = new URLSearchParams(query || '');
  let m = path.match(/^\/q\/([^/]+)\/m\/(\d+)$/);
  if (m) return { view: 'message', queue: decodeURIComponent(m[1]), id: m[2] };
  m = path.match(/^\/q\/([^/]+)$/);
  if (m) {
    const state = STATES[params.get('state')] ? params.get('state') : 'ready';
    const after = /^\d+$/.test(params.get('after') || '') ? params.get('after') : '0';
    return { view: 'queue', queue: decodeURIComponent(m[1]), state, after };
  }
  return { view: 'queues' };
}

const queueHref = (name, state, after) =>
  `#/q/${encodeURIComponent(name)}?state=${state}` + (after && after !== '0' ? `&after=${after}` : '');
const messageHref = (name, id) => `#/q/${encodeURIComponent(name)}/m/${id}`;

function onRoute() {
  if (loginShown) return;
  const prev = route;
  route = parseHash();
  clearError();
  show(byId('view-queues'), route.view === 'queues');
  show(byId('view-queue'), route.view === 'queue');
  show(byId('view-message'), route.view === 'message');
  if (route.view === 'queue') {
    if (prev.view !== 'queue' || prev.queue !== route.queue || prev.state !== route.state)
      pageStack = [];
    setupQueueView();
    loadMessages();
  } else if (route.view === 'message') {
    loadMessage();
  }
  kick();
}

// ---- Polling ------------------------------------------------------------------------

let pollTimer = null;
let polling = false;
let kicked = false; // refresh again as soon as the running poll ends
let queueInfo = null; // the queue of the queue view, from the last poll

function stopPolling() {
  clearTimeout(pollTimer);
  pollTimer = null;
}

function schedulePoll() {
  stopPolling();
  if (!loginShown) pollTimer = setTimeout(refresh, kicked ? 0 : POLL_MS);
  kicked = false;
}

// kick refreshes now (after an action), or right after the running poll.
function kick() {
  if (polling) {
    kicked = true;
    return;
  }
  stopPolling();
  refresh();
}

async function listAllQueues() {
  const all = [];
  let after = '';
  for (let i = 0; i < MAX_QUEUE_PAGES; i++) {
    const r = await api('ListQueues', { after, limit: 1000 });
    const qs = r.queues || [];
    all.push(...qs);
    if (!r.more || qs.length === 0) break;
    after = qs[qs.length - 1].name;
  }
  return all;
}

// refresh polls the counts the current view shows, then schedules itself.
async function refresh() {
  if (polling || loginShown) return;
  polling = true;
  try {
    if (route.view === 'queues') {
      const qs = await listAllQueues();
      qs.forEach(addSample);
      renderQueues(qs);
    } else if (route.view === 'queue') {
      const r = await api('GetQueue', { name: route.queue });
      queueInfo = r.queue;
      addSample(queueInfo);
      renderQueueStats(queueInfo);
    }
    setConn(true, 'live');
    show(byId('logout'), sessionStorage.getItem(TOKEN_KEY) !== null);
  } catch (e) {
    if (!(e instanceof ApiError && e.http === 401)) {
      setConn(false, e.http === 0 ? 'offline' : 'error');
      showError(e);
    }
  } finally {
    polling = false;
    schedulePoll();
  }
}

// ---- Queues view ---------------------------------------------------------------------

const queueRows = new Map(); // name -> {tr, cells, buttons}

function queueRow(name) {
  let row = queueRows.get(name);
  if (row) return row;
  const cells = {};
  const cell = (col, cls) => (cells[col] = el('td', { class: cls, dataset: { col } }));
  const link = el('a', { href: queueHref(name, 'ready'), text: name });
  const pause = el('button', { type: 'button', dataset: { action: 'pause' } }, 'Pause');
  const purge = el('button', { type: 'button', class: 'danger', dataset: { action: 'purge' } }, 'Purge');
  const redrive = el('button', { type: 'button', dataset: { action: 'redrive' } }, 'Redrive dead');
  const tr = el(
    'tr',
    { dataset: { queue: name } },
    el('td', { dataset: { col: 'name' } }, link),
    cell('state'),
    cell('ready', 'num'),
    cell('delayed', 'num'),
    cell('in_flight', 'num'),
    cell('dead', 'num'),
    cell('push_rate', 'num'),
    cell('ack_rate', 'num'),
    cell('oldest', 'num'),
    el('td', { class: 'row-actions' }, pause, purge, redrive),
  );
  row = { tr, cells, pause, purge, redrive, q: null };
  pause.addEventListener('click', () => (row.q.paused ? resumeQueue(name) : pauseQueue(name)));
  purge.addEventListener('click', () => purgeQueue(row.q, 'all'));
  redrive.addEventListener('click', () => redriveAll(row.q));
  queueRows.set(name, row);
  return row;
}

function renderQueues(qs) {
  const body = byId('queues-body');
  const seen = new Set();
  const order = [];
  for (const q of qs) {
    const s = q.stats || {};
    const row = queueRow(q.name);
    row.q = q;
    seen.add(q.name);
    order.push(row.tr);
    const r = rates(q.name);
    setText(row.cells.state, q.paused ? 'paused' : 'active');
    row.cells.state.classList.toggle('paused', !!q.paused);
    setText(row.cells.ready, fmtCount(s.ready));
    setText(row.cells.delayed, fmtCount(s.delayed));
    setText(row.cells.in_flight, fmtCount(s.in_flight));
    setText(row.cells.dead, fmtCount(s.dead));
    row.cells.dead.classList.toggle('alert', num(s.dead) > 0);
    setText(row.cells.push_rate, fmtRate(r.push));
    setText(row.cells.ack_rate, fmtRate(r.ack));
    setText(row.cells.oldest, num(s.oldest_ready_age_ms) ? fmtDuration(s.oldest_ready_age_ms) : '–');
    setText(row.pause, q.paused ? 'Resume' : 'Pause');
    row.redrive.disabled = num(s.dead) === 0;
  }
  for (const [name, row] of queueRows) {
    if (!seen.has(name)) {
      row.tr.remove();
      queueRows.delete(name);
      samples.delete(name);
    }
  }
  // Append in name order; moving a row keeps its elements (and focus).
  order.forEach((tr, i) => {
    if (body.children[i] !== tr) body.insertBefore(tr, body.children[i] || null);
  });
  setText(byId('queues-count'), `(${qs.length})`);
  show(byId('queues-empty'), qs.length === 0);
}

// ---- Actions ---------------------------------------------------------------------------

async function act(fn) {
  clearError();
  try {
    await fn();
  } catch (e) {
    showError(e);
  }
  if (route.view === 'queue') loadMessages();
  if (route.view === 'message') loadMessage();
  kick();
}

function pauseQueue(name) {
  return act(async () => {
    await api('PauseQueue', { name });
    notice(`Queue ${name} paused: nothing is handed out until it is resumed.`);
  });
}

function resumeQueue(name) {
  return act(async () => {
    await api('ResumeQueue', { name });
    notice(`Queue ${name} resumed.`);
  });
}

async function purgeQueue(q, state) {
  const s = q.stats || {};
  const st = STATES[state];
  const n = st.stat ? num(s[st.stat]) : num(s.ready) + num(s.delayed) + num(s.in_flight) + num(s.dead);
  const what = state === 'all' ? 'messages (every state)' : `${st.label} messages`;
  const ok = await confirmAction(
    `Purge ${q.name}?`,
    `Delete the ${fmtCount(n)} ${what} of queue ${q.name}? This cannot be undone.`,
    'Purge',
  );
  if (!ok) return;
  await act(async () => {
    // Bounded steps (as mqctl does), so a huge purge never holds the
    // broker's writer in one long transaction.
    const body = { name: q.name, limit: PURGE_STEP, cursor: '0' };
    if (state !== 'all') body.states = [st.api];
    let total = 0;
    for (let i = 0; i < MAX_PURGE_CALLS; i++) {
      const r = await api('PurgeQueue', body);
      total += num(r.purged);
      if (!r.more) break;
      body.cursor = r.cursor;
    }
    notice(`Purged ${fmtCount(total)} messages of ${q.name}.`);
  });
}

async function redriveAll(q) {
  const n = num((q.stats || {}).dead);
  const ok = await confirmAction(
    `Redrive dead messages of ${q.name}?`,
    `Move the ${fmtCount(n)} dead messages of queue ${q.name} back to ready (attempts reset, history kept)?`,
    'Redrive',
  );
  if (!ok) return;
  await act(async () => {
    let total = 0;
    let after = '0';
    for (let i = 0; i < MAX_REDRIVE_CALLS; i++) {
      const r = await api('Redrive', { queue: q.name, max: 10000, after_id: after });
      total += num(r.redriven);
      if (!r.more) break;
      after = r.next_after_id;
    }
    notice(`Redrove ${fmtCount(total)} dead messages of ${q.name}.`);
  });
}

async function redriveOne(queue, id) {
  const ok = await confirmAction(
    `Redrive message ${id}?`,
    `Move dead message ${id} of queue ${queue} back to ready (attempts reset, history kept)?`,
    'Redrive',
  );
  if (!ok) return;
  await act(async () => {
    const r = await api('Redrive', { queue, ids: [id] });
    notice(`Redrove ${fmtCount(r.redriven)} message (${id}) of ${queue}.`);
  });
}

async function deleteOne(queue, id) {
  const ok = await confirmAction(
    `Delete message ${id}?`,
    `Delete message ${id} of queue ${queue}? This cannot be undone.`,
    'Delete',
  );
  if (!ok) return;
  await act(async () => {
    await api('DeleteMessage', { queue, id });
    notice(`Deleted message ${id} of ${queue}.`);
    location.hash = queueHref(queue, 'ready');
  });
}

// ---- Queue view ------------------------------------------------------------------------

let pageStack = []; // after ids of the pages before this one
let lastPage = null; // {next, more}
let listSeq = 0;

function setupQueueView() {
  setText(byId('q-name'), route.queue);
  for (const a of byId('q-tabs').querySelectorAll('a')) {
    a.href = queueHref(route.queue, a.dataset.state);
    a.classList.toggle('active', a.dataset.state === route.state);
  }
  setText(byId('q-purge'), route.state === 'all' ? 'Purge all' : `Purge ${STATES[route.state].label}`);
  if (!queueInfo || queueInfo.name !== route.queue) {
    queueInfo = null;
    for (const v of byId('q-stats').querySelectorAll('.value')) setText(v, '');
  }
}

function renderQueueStats(q) {
  if (route.view !== 'queue' || q.name !== route.queue) return;
  const s = q.stats || {};
  const c = q.config || {};
  const r = rates(q.name);
  const vals = {
    ready: fmtCount(s.ready),
    delayed: fmtCount(s.delayed),
    in_flight: fmtCount(s.in_flight),
    dead: fmtCount(s.dead),
    push_rate: fmtRate(r.push),
    ack_rate: fmtRate(r.ack),
    oldest: num(s.oldest_ready_age_ms) ? fmtDuration(s.oldest_ready_age_ms) : '–',
  };
  for (const v of byId('q-stats').querySelectorAll('.value')) setText(v, vals[v.dataset.stat]);
  for (const a of byId('q-tabs').querySelectorAll('a')) {
    const st = STATES[a.dataset.state];
    const cnt = a.querySelector('.count');
    if (cnt && st.stat) setText(cnt, fmtCount(s[st.stat]));
  }
  show(byId('q-paused'), !!q.paused);
  show(byId('q-pause'), !q.paused);
  show(byId('q-resume'), !!q.paused);
  byId('q-redrive').disabled = num(s.dead) === 0;
  setText(
    byId('q-totals'),
    `Totals: pushed ${fmtCount(s.pushed_total)}, acked ${fmtCount(s.acked_total)}, ` +
      `nacked ${fmtCount(s.nacked_total)}, leases expired ${fmtCount(s.expired_total)}, ` +
      `went dead ${fmtCount(s.dead_total)}, redriven ${fmtCount(s.redriven_total)}, ` +
      `deduplicated ${fmtCount(s.deduplicated_total)}.`,
  );
  const parts = [
    `max attempts ${c.max_attempts || 'default'}`,
    `lease ${c.lease_ms ? fmtDuration(c.lease_ms) : 'default'}`,
  ];
  if (num(c.max_length)) parts.push(`max length ${fmtCount(c.max_length)}`);
  if (num(c.max_age_ms)) parts.push(`TTL ${fmtDuration(c.max_age_ms)}`);
  if (c.rate_limit) parts.push(`rate limit ${c.rate_limit}/s`);
  if (c.dead_letter_queue) parts.push(`dead letters to ${c.dead_letter_queue}`);
  setText(byId('q-config'), `Config: ${parts.join(', ')}.`);
}

async function loadMessages() {
  const seq = ++listSeq;
  const { queue, state, after } = route;
  const body = byId('messages-body');
  try {
    // One call reads at most 100000 records (STORE_LIST_SCAN_MAX); a sparse
    // state (3 delayed among a million ready) can need a few calls to fill
    // a page, so go on while a page comes back empty, bounded, and not when
    // the queue's counters say there are none.
    const st = STATES[state];
    const known = queueInfo && queueInfo.name === queue && st.stat;
    let r = null;
    let from = after;
    for (let i = 0; i < MAX_SCAN_CALLS; i++) {
      r = await api('ListMessages', { queue, state: st.api, after_id: from, limit: PAGE_SIZE });
      if (seq !== listSeq) return; // a newer listing was asked for
      if ((r.messages || []).length > 0 || !r.more) break;
      if (known && num((queueInfo.stats || {})[st.stat]) === 0) break;
      from = r.next_after_id;
    }
    const msgs = r.messages || [];
    lastPage = { next: r.next_after_id, more: !!r.more };
    body.replaceChildren(...msgs.map((m) => messageRow(queue, m)));
    const empty = byId('messages-empty');
    if (msgs.length === 0) {
      setText(
        empty,
        r.more
          ? 'No such messages in the range scanned; Next goes on scanning.'
          : `No ${STATES[state].label === 'all' ? '' : STATES[state].label + ' '}messages` +
              (after !== '0' ? ` after id ${after}.` : '.'),
      );
    }
    show(empty, msgs.length === 0);
    setText(
      byId('m-range'),
      msgs.length
        ? `ids ${msgs[0].id} to ${msgs[msgs.length - 1].id}` + (r.more ? ', more follow' : '')
        : '',
    );
    byId('m-next').disabled = !r.more;
    byId('m-prev').disabled = after === '0';
    byId('m-first').disabled = after === '0';
  } catch (e) {
    if (seq !== listSeq) return;
    body.replaceChildren();
    showError(e);
  }
}

function messageRow(queue, m) {
  const href = messageHref(queue, m.id);
  const reason = m.state === 'STATE_DEAD' ? m.dead_reason : m.last_error;
  return el(
    'tr',
    { dataset: { id: m.id }, class: 'clickable', onclick: () => (location.hash = href) },
    el('td', { class: 'num' }, el('a', { href, text: m.id })),
    el('td', { text: STATE_NAMES[m.state] || m.state }),
    el('td', { class: 'num', text: String(m.attempts || 0) }),
    el('td', { class: 'time', text: fmtTime(m.enqueued_ms) }),
    el('td', { text: m.type || '' }),
    el('td', {}, el('div', { class: 'payload-preview', text: payloadPreview(m.payload) })),
    el('td', { class: m.state === 'STATE_DEAD' ? 'reason' : '', text: reason || '' }),
  );
}

function pageNext() {
  if (!lastPage || !lastPage.more) return;
  pageStack.push(route.after);
  location.hash = queueHref(route.queue, route.state, lastPage.next);
}

function pagePrev() {
  location.hash = queueHref(route.queue, route.state, pageStack.length ? pageStack.pop() : '0');
}

function pageFirst() {
  pageStack = [];
  location.hash = queueHref(route.queue, route.state, '0');
}

// ---- Message view -------------------------------------------------------------------------

let shownMessage = null;

async function loadMessage() {
  const { queue, id } = route;
  const back = byId('m-back');
  back.href = queueHref(queue, 'ready');
  setText(back, queue);
  setText(byId('m-id'), id);
  try {
    const r = await api('GetMessage', { queue, id });
    if (route.view !== 'message' || route.id !== id) return;
    renderMessage(queue, r.message || {});
  } catch (e) {
    shownMessage = null;
    byId('m-fields').replaceChildren();
    byId('m-history-body').replaceChildren();
    setText(byId('m-payload'), '');
    setText(byId('m-state'), e.status === 'NOT_FOUND' ? 'gone' : '');
    show(byId('m-redrive'), false);
    showError(e);
  }
}

function renderMessage(queue, m) {
  shownMessage = m;
  const dead = m.state === 'STATE_DEAD';
  const st = byId('m-state');
  setText(st, STATE_NAMES[m.state] || m.state);
  st.className = `badge ${dead ? 'dead' : ''}`;
  byId('m-back').href = queueHref(queue, { STATE_READY: 'ready', STATE_DELAYED: 'delayed', STATE_LEASED: 'leased', STATE_DEAD: 'dead' }[m.state] || 'all');
  show(byId('m-redrive'), dead);

  const rows = [
    ['Queue', m.queue || queue],
    ['State', STATE_NAMES[m.state] || m.state],
  ];
  if (dead) rows.push(['Dead reason', m.dead_reason || '(none)']);
  if (m.last_error) rows.push(['Last error', m.last_error]);
  rows.push(['Attempts', String(m.attempts || 0)]);
  rows.push(['Enqueued', fmtTime(m.enqueued_ms)]);
  if (num(m.not_before_ms)) rows.push(['Ready at', fmtTime(m.not_before_ms)]);
  if (m.state === 'STATE_LEASED') rows.push(['Lease ends', fmtTime(m.lease_expiry_ms)]);
  if (num(m.expires_ms)) rows.push(['Expires', fmtTime(m.expires_ms)]);
  rows.push(['Priority', String(m.priority || 0)]);
  if (m.type) rows.push(['Type', m.type]);
  if (m.group) rows.push(['Group', m.group]);
  if (m.dedup_key) rows.push(['Dedup key', m.dedup_key]);
  for (const hd of m.headers || []) rows.push([`Header ${hd.key}`, hd.value]);
  byId('m-fields').replaceChildren(
    ...rows.flatMap(([k, v]) => [
      el('dt', { text: k }),
      el('dd', { dataset: { field: k.toLowerCase().replace(/\s+/g, '_') }, text: v }),
    ]),
  );

  const hist = m.history || [];
  byId('m-history-body').replaceChildren(
    ...hist.map((a, i) =>
      el(
        'tr',
        {},
        el('td', { class: 'num', text: String(i + 1) }),
        el('td', { class: 'time', text: fmtTime(a.time_ms) }),
        el('td', { text: OUTCOMES[a.outcome] || a.outcome }),
        el('td', { text: a.error || '' }),
      ),
    ),
  );
  show(byId('m-history'), hist.length > 0);
  show(byId('m-history-empty'), hist.length === 0);

  const bytes = b64bytes(m.payload);
  let text = payloadText(bytes);
  let info = `${bytes.length} bytes`;
  if (text === null) {
    text = hexDump(bytes, 4096);
    info += ', binary (hex)';
  } else {
    try {
      const j = JSON.parse(text);
      if (j !== null && typeof j === 'object') {
        text = JSON.stringify(j, null, 2);
        info += ', JSON';
      }
    } catch {
      /* plain text */
    }
  }
  setText(byId('m-payload-info'), `(${info})`);
  setText(byId('m-payload'), text);
}

// ---- Start ------------------------------------------------------------------------------

async function loadServerInfo() {
  try {
    const r = await api('ServerInfo', {});
    setText(byId('server'), `mqd ${r.version} · ${r.storage_engine} · ${r.durability}`);
  } catch {
    /* the poll reports errors */
  }
}

async function start() {
  // One authenticated call first: with auth on and no token it shows the
  // login form (api() -> needLogin) and nothing else starts.
  try {
    await api('ListQueues', { limit: 1 });
  } catch (e) {
    if (!(e instanceof ApiError && e.http === 401)) {
      setConn(false, 'error');
      showError(e);
    }
    if (loginShown) return;
  }
  loadServerInfo();
  onRoute();
}

function init() {
  byId('login-form').addEventListener('submit', onLogin);
  byId('logout').addEventListener('click', onLogout);
  byId('confirm-ok').addEventListener('click', () => confirmDone(true));
  byId('confirm-cancel').addEventListener('click', () => confirmDone(false));
  byId('confirm').addEventListener('close', () => confirmDone(false));
  byId('q-pause').addEventListener('click', () => pauseQueue(route.queue));
  byId('q-resume').addEventListener('click', () => resumeQueue(route.queue));
  byId('q-purge').addEventListener('click', () => queueInfo && purgeQueue(queueInfo, route.state));
  byId('q-redrive').addEventListener('click', () => queueInfo && redriveAll(queueInfo));
  byId('m-next').addEventListener('click', pageNext);
  byId('m-prev').addEventListener('click', pagePrev);
  byId('m-first').addEventListener('click', pageFirst);
  byId('m-refresh').addEventListener('click', loadMessages);
  byId('m-redrive').addEventListener('click', () => redriveOne(route.queue, route.id));
  byId('m-delete').addEventListener('click', () => deleteOne(route.queue, route.id));
  window.addEventListener('hashchange', onRoute);
  start();
}

init();
