// dashboard.mjs: mqd's web dashboard (broker/ui/, docs/http.md "Dashboard")
// in a real browser: Debian's chromium driven by playwright-core, against
// real mqd processes on 127.0.0.1 (free ports) with LMDB data in temp dirs.
//
// Run by meson (test 'dashboard', suite 'browser', through run.sh) with
// $MQD and $MQCTL set; $MQ_ARTIFACTS is where the screenshots go
// (<builddir>/meson-logs/dashboard/). Every check asserts visible text or
// counts, and cross-checks the broker through mqctl or the JSON API. Waits
// are bounded; a wait that runs out fails the test.
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const MQD = process.env.MQD;
const MQCTL = process.env.MQCTL;
const CHROMIUM = process.env.MQ_CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = process.env.MQ_ARTIFACTS || fs.mkdtempSync(path.join(os.tmpdir(), 'mq-dash-art-'));
const WAIT_MS = 10000 * Number(process.env.MQTEST_TIME_MULT || 1);
const TOKEN = 'dash-s3cret-token';

const children = [];
const tmpdirs = [];
let browser = null;
let lastPage = null; // screenshot on failure

function log(...a) {
  console.log(`[dashboard] ${a.join(' ')}`);
}

const T0 = Date.now();
let stepName = 'start';

// step names the part running (failures say it; the log times it).
function setStep(name) {
  stepName = name;
  log(`${((Date.now() - T0) / 1000).toFixed(1)} s: ${name}`);
}

function fail(msg) {
  throw new Error(`${stepName}: ${msg}`);
}

function check(cond, msg) {
  if (!cond) fail(msg);
}

function equal(got, want, what) {
  if (got !== want) fail(`${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- mqd and mqctl ---------------------------------------------------------------

async function startMqd(name, env) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `mq-dash-${name}-`));
  tmpdirs.push(dir);
  const logPath = path.join(dir, 'mqd.log');
  const out = fs.openSync(logPath, 'a');
  const url = `ipc://${dir}/mq.sock`;
  // setpriv (util-linux) makes mqd die with this process even if it is
  // killed outright (meson's timeout), as mqtest.c's PDEATHSIG does.
  const proc = spawn(
    'setpriv',
    ['--pdeathsig', 'KILL', '--', MQD, `--listen=${url}`, `--data-dir=${dir}/data`,
      '--http-listen', 'http://127.0.0.1:0'],
    { stdio: ['ignore', out, out], env: { ...process.env, ...env } },
  );
  fs.closeSync(out);
  const b = { name, dir, url, logPath, proc, exited: null };
  proc.on('exit', (code, sig) => (b.exited = { code, sig }));
  children.push(b);
  for (let i = 0; i < WAIT_MS / 50; i++) {
    const text = fs.readFileSync(logPath, 'utf8');
    const m = text.match(/http listening on http:\/\/127\.0\.0\.1:(\d+)/);
    if (m && text.includes(" ready: ")) {
      b.http = `http://127.0.0.1:${m[1]}`;
      log(`mqd ${name}: ${b.http} (${url})`);
      return b;
    }
    if (b.exited) break;
    await sleep(50);
  }
  fail(`mqd ${name} did not become ready; its log:\n${fs.readFileSync(logPath, 'utf8')}`);
}

async function stopMqd(b) {
  if (b.exited) return;
  b.proc.kill('SIGTERM');
  for (let i = 0; i < WAIT_MS / 50 && !b.exited; i++) await sleep(50);
  if (!b.exited) {
    b.proc.kill('SIGKILL');
    fail(`mqd ${b.name} did not stop on SIGTERM`);
  }
  equal(b.exited.code, 0, `mqd ${b.name} exit status`);
}

function mqctl(b, args, opts = {}) {
  const env = { ...process.env };
  if (opts.token) env.MQ_TOKEN = opts.token;
  try {
    return execFileSync(MQCTL, ['--url', b.url, ...args], {
      env,
      input: opts.input,
      encoding: 'utf8',
      stdio: ['pipe', 'pipe', 'pipe'],
    });
  } catch (e) {
    fail(`mqctl ${args.join(' ')} failed (${e.status}): ${e.stderr}`);
  }
}

const mqctlJson = (b, args, opts) => JSON.parse(mqctl(b, ['--json', ...args], opts));

async function api(b, method, body, token) {
  const headers = { 'Content-Type': 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  const res = await fetch(`${b.http}/v1/${method}`, {
    method: 'POST',
    headers,
    body: JSON.stringify(body || {}),
  });
  return { status: res.status, body: await res.json() };
}

async function apiOk(b, method, body, token) {
  const r = await api(b, method, body, token);
  if (r.status !== 200) fail(`POST /v1/${method}: HTTP ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

async function stats(b, queue, token) {
  return (await apiOk(b, 'GetQueue', { name: queue }, token)).queue;
}

// pullAndTerm leases n messages of queue and terms them with reason.
function pullAndTerm(b, queue, n, reason) {
  const r = mqctlJson(b, ['pull', queue, '--max', String(n), '--wait-ms', '2000']);
  equal(r.messages.length, n, `messages pulled from ${queue}`);
  for (const m of r.messages) mqctl(b, ['term', queue, String(m.id), String(m.lease_token), '--reason', reason]);
  return r.messages.map((m) => String(m.id));
}

// ---- Page helpers -------------------------------------------------------------------

// waitText waits until the locator's text (trimmed) is want (string or RegExp).
async function waitText(page, selector, want, what) {
  const ok = (t) => (want instanceof RegExp ? want.test(t) : t === want);
  let last = null;
  for (let i = 0; i < WAIT_MS / 100; i++) {
    const loc = page.locator(selector);
    if ((await loc.count()) > 0) {
      last = ((await loc.first().textContent()) || '').trim();
      if (ok(last)) return last;
    }
    await sleep(100);
  }
  fail(`${what || selector}: text ${JSON.stringify(last)}, want ${want}`);
}

async function waitVisible(page, selector, visible = true) {
  try {
    await page.locator(selector).first().waitFor({ state: visible ? 'visible' : 'hidden', timeout: WAIT_MS });
  } catch {
    fail(`${selector} did not become ${visible ? 'visible' : 'hidden'}`);
  }
}

async function waitCount(page, selector, n) {
  let c = -1;
  for (let i = 0; i < WAIT_MS / 100; i++) {
    c = await page.locator(selector).count();
    if (c === n) return;
    await sleep(100);
  }
  fail(`${selector}: ${c} elements, want ${n}`);
}

const cell = (queue, col) => `#queues-body tr[data-queue="${queue}"] td[data-col="${col}"]`;

async function shot(page, name) {
  const file = path.join(ARTIFACTS, name);
  await page.screenshot({ path: file, fullPage: true });
  check(fs.statSync(file).size > 1000, `screenshot ${file} is empty`);
  log(`screenshot ${file}`);
}

// newPage opens a page that records console errors and uncaught exceptions
// (a CSP violation is a console error): the test fails on any.
async function newPage(ctx, errors) {
  const page = await ctx.newPage();
  lastPage = page;
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  page.on('dialog', (d) => {
    errors.push(`unexpected ${d.type()} dialog: ${d.message()}`);
    d.dismiss();
  });
  return page;
}

// ---- The checks ------------------------------------------------------------------------

const XSS_PAYLOAD = '{"to":"ann@example.com","html":"<img src=x onerror=window.__xss=1>"}';
const DEAD_REASON = 'smtp 550: <b>mailbox</b> unavailable';

async function openBroker() {
  const b = await startMqd('open', {});
  setStep('setup');
  mqctl(b, ['queue', 'create', 'emails', '--max-attempts', '3']);
  mqctl(b, ['push', 'emails', XSS_PAYLOAD]);
  for (let i = 2; i <= 4; i++) mqctl(b, ['push', 'emails', `{"to":"user${i}@example.com"}`]);
  const [deadId] = pullAndTerm(b, 'emails', 1, DEAD_REASON);
  equal(deadId, '1', 'id of the termed message');
  mqctl(b, ['push', 'scratch', 'a', 'b', 'c']);
  const lines = Array.from({ length: 120 }, (_, i) => `bulk message ${i + 1}`).join('\n') + '\n';
  mqctl(b, ['push', 'bulk', '--lines'], { input: lines });
  let q = await stats(b, 'emails');
  equal(q.stats.ready, '3', 'emails ready (API)');
  equal(q.stats.dead, '1', 'emails dead (API)');

  const errors = [];
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await newPage(ctx, errors);

  setStep('static files');
  const res = await page.goto(`${b.http}/`);
  equal(res.status(), 200, 'GET / status');
  const h = res.headers();
  check(/^text\/html/.test(h['content-type']), `GET / Content-Type ${h['content-type']}`);
  check(/script-src 'self'/.test(h['content-security-policy'] || ''), 'GET / has the CSP');
  check(!/unsafe-inline/.test(h['content-security-policy']), 'CSP allows no inline code');

  setStep('queues view');
  await waitText(page, cell('emails', 'ready'), '3');
  await waitText(page, cell('emails', 'dead'), '1');
  await waitText(page, cell('emails', 'state'), 'active');
  await waitText(page, cell('bulk', 'ready'), '120');
  await waitText(page, cell('scratch', 'ready'), '3');
  await waitText(page, '#conn', 'live');
  check(!(await page.locator('#login').isVisible()), 'no login form without auth');

  setStep('live update');
  mqctl(b, ['push', 'emails', 'e5', 'e6']);
  await waitText(page, cell('emails', 'ready'), '5', 'emails ready after 2 more pushes');
  // The push rate is computed from pushed_total between two polls.
  await waitText(page, cell('emails', 'push_rate'), /^(?!0$|–$)[0-9.,]+$/, 'emails pushed/s after pushes');
  await shot(page, 'dashboard-queues.png');

  setStep('queue view');
  await page.click('#queues-body tr[data-queue="emails"] td[data-col="name"] a');
  await waitText(page, '#q-name', 'emails');
  await waitText(page, '#q-stats [data-stat="ready"]', '5');
  await waitText(page, '#q-stats [data-stat="dead"]', '1');
  await waitCount(page, '#messages-body tr', 5);
  await waitText(page, '#messages-body tr[data-id="2"] td:nth-child(6)', '{"to":"user2@example.com"}');

  setStep('dead message');
  await page.click('#q-tabs a[data-state="dead"]');
  await waitCount(page, '#messages-body tr', 1);
  await waitText(page, '#messages-body tr[data-id="1"] td:nth-child(7)', `termed: ${DEAD_REASON}`);
  await waitText(page, '#messages-body tr[data-id="1"] td:nth-child(6)', XSS_PAYLOAD);
  await page.click('#messages-body tr[data-id="1"] a');
  await waitText(page, '#m-state', 'dead');
  await waitText(page, '#m-fields dd[data-field="dead_reason"]', `termed: ${DEAD_REASON}`);
  await waitCount(page, '#m-history-body tr', 1);
  await waitText(page, '#m-history-body tr td:nth-child(3)', 'termed');
  await waitText(page, '#m-history-body tr td:nth-child(4)', DEAD_REASON);
  await waitText(page, '#m-payload', /"html": "<img src=x onerror=window.__xss=1>"/);
  // User data stays text: no element came out of the payload or the reason.
  equal(await page.locator('main img, main b').count(), 0, 'elements made from user data');
  equal(await page.evaluate(() => window.__xss), undefined, 'payload script ran');
  await shot(page, 'dashboard-dead-message.png');

  setStep('redrive one: cancel');
  await page.click('#m-redrive');
  await waitVisible(page, '#confirm');
  await waitText(page, '#confirm-text', /dead message 1 of queue emails back to ready/);
  await page.click('#confirm-cancel');
  await waitVisible(page, '#confirm', false);
  equal((await apiOk(b, 'GetMessage', { queue: 'emails', id: '1' })).message.state, 'STATE_DEAD', 'state after cancel');

  setStep('redrive one: confirm');
  await page.click('#m-redrive');
  await waitVisible(page, '#confirm');
  await page.click('#confirm-ok');
  await waitText(page, '#notice', /Redrove 1 message \(1\)/);
  await waitText(page, '#m-state', 'ready');
  const st = mqctlJson(b, ['queue', 'stats', 'emails']);
  const s = st.stats || st;
  equal(String(s.dead), '0', 'emails dead after redrive (mqctl)');
  equal(String(s.ready), '6', 'emails ready after redrive (mqctl)');
  await page.click('#m-back');
  await waitText(page, '#q-stats [data-stat="dead"]', '0');
  await waitText(page, '#q-stats [data-stat="ready"]', '6');

  setStep('pause');
  await page.click('#q-pause');
  await waitVisible(page, '#q-paused');
  equal((await stats(b, 'emails')).paused, true, 'paused (API)');
  equal(mqctlJson(b, ['pull', 'emails', '--wait-ms', '0']).messages.length, 0, 'messages pulled while paused');
  await page.click('a[href="#/"]');
  await waitText(page, cell('emails', 'state'), 'paused');
  setStep('resume');
  await page.click('#queues-body tr[data-queue="emails"] button[data-action="pause"]');
  await waitText(page, cell('emails', 'state'), 'active');
  equal((await stats(b, 'emails')).paused, false, 'paused after resume (API)');

  setStep('redrive all');
  pullAndTerm(b, 'emails', 2, 'bad address');
  await waitText(page, cell('emails', 'dead'), '2');
  await page.click('#queues-body tr[data-queue="emails"] button[data-action="redrive"]');
  await waitVisible(page, '#confirm');
  await waitText(page, '#confirm-text', /Move the 2 dead messages of queue emails/);
  await page.click('#confirm-ok');
  await waitText(page, '#notice', /Redrove 2 dead messages of emails/);
  await waitText(page, cell('emails', 'dead'), '0');
  q = await stats(b, 'emails');
  equal(q.stats.dead, '0', 'emails dead after redrive all (API)');
  equal(q.stats.redriven_total, '3', 'emails redriven_total (API)');

  setStep('purge');
  await page.click('#queues-body tr[data-queue="scratch"] button[data-action="purge"]');
  await waitVisible(page, '#confirm');
  await waitText(page, '#confirm-text', /Delete the 3 messages \(every state\) of queue scratch/);
  await page.click('#confirm-cancel');
  await waitVisible(page, '#confirm', false);
  equal((await stats(b, 'scratch')).stats.ready, '3', 'scratch ready after a cancelled purge');
  await page.click('#queues-body tr[data-queue="scratch"] button[data-action="purge"]');
  await page.click('#confirm-ok');
  await waitText(page, '#notice', /Purged 3 messages of scratch/);
  await waitText(page, cell('scratch', 'ready'), '0');
  equal((await stats(b, 'scratch')).stats.ready, '0', 'scratch ready after purge (API)');

  setStep('paging');
  await page.click('#queues-body tr[data-queue="bulk"] td[data-col="name"] a');
  await waitCount(page, '#messages-body tr', 50);
  const firstId = Number(await page.locator('#messages-body tr').first().getAttribute('data-id'));
  await waitText(page, '#m-range', `ids ${firstId} to ${firstId + 49}, more follow`);
  await waitText(page, '#messages-body tr:first-child td:nth-child(6)', 'bulk message 1');
  await page.click('#m-next');
  await waitText(page, '#m-range', `ids ${firstId + 50} to ${firstId + 99}, more follow`);
  await waitText(page, '#messages-body tr:first-child td:nth-child(6)', 'bulk message 51');
  await page.click('#m-next');
  await waitText(page, '#m-range', `ids ${firstId + 100} to ${firstId + 119}`);
  await waitCount(page, '#messages-body tr', 20);
  check(await page.locator('#m-next').isDisabled(), 'Next is disabled on the last page');
  await page.click('#m-prev');
  await waitText(page, '#m-range', `ids ${firstId + 50} to ${firstId + 99}, more follow`);
  await page.click('#m-first');
  await waitText(page, '#m-range', `ids ${firstId} to ${firstId + 49}, more follow`);
  await shot(page, 'dashboard-queue.png');

  equal(errors.join('\n'), '', 'console errors');
  await ctx.close();
  setStep('stop open broker');
  await stopMqd(b);
}

async function authBroker() {
  const b = await startMqd('auth', { MQ_AUTH_TOKENS: `ops=${TOKEN} admin=* produce=* consume=*` });
  setStep('auth setup');
  mqctl(b, ['push', 'orders', 'o1', 'o2'], { token: TOKEN });
  equal((await api(b, 'ListQueues', {})).status, 401, 'ListQueues without a token');
  const js = await fetch(`${b.http}/ui/app.js`);
  equal(js.status, 200, 'GET /ui/app.js without a token (static files are public)');

  const errors = [];
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 700 } });
  const page = await newPage(ctx, errors);
  setStep('login prompt');
  await page.goto(`${b.http}/`);
  await waitVisible(page, '#login');
  check(!(await page.locator('#view-queues').isVisible()), 'queues hidden before login');
  equal(await page.locator('#queues-body tr').count(), 0, 'queue rows before login');
  await shot(page, 'dashboard-login.png');

  setStep('wrong token');
  await page.fill('#token', 'not-the-token');
  await page.click('#login-form button[type="submit"]');
  await waitVisible(page, '#login-error');
  await waitText(page, '#login-error', /The token was refused/);
  equal(await page.evaluate(() => sessionStorage.getItem('mq.token')), null, 'refused token kept');

  setStep('right token');
  await page.fill('#token', TOKEN);
  await page.click('#login-form button[type="submit"]');
  await waitText(page, cell('orders', 'ready'), '2');
  await waitVisible(page, '#login', false);
  equal(await page.evaluate(() => sessionStorage.getItem('mq.token')), TOKEN, 'token in sessionStorage');
  mqctl(b, ['push', 'orders', 'o3'], { token: TOKEN });
  await waitText(page, cell('orders', 'ready'), '3');

  setStep('reload keeps the session');
  await page.reload();
  await waitText(page, cell('orders', 'ready'), '3');
  check(!(await page.locator('#login').isVisible()), 'no login form after reload');

  setStep('action with the token');
  await page.click('#queues-body tr[data-queue="orders"] button[data-action="pause"]');
  await waitText(page, cell('orders', 'state'), 'paused');
  equal((await stats(b, 'orders', TOKEN)).paused, true, 'orders paused (API)');

  setStep('sign out');
  await page.click('#logout');
  await waitVisible(page, '#login');
  equal(await page.evaluate(() => sessionStorage.getItem('mq.token')), null, 'token after sign out');
  // The refused attempt logged a 401 resource error; nothing else may fail.
  const other = errors.filter((e) => !/status of 401/.test(e));
  equal(other.join('\n'), '', 'console errors');
  await ctx.close();
  setStep('stop auth broker');
  await stopMqd(b);
}

async function main() {
  const t0 = Date.now();
  check(MQD && MQCTL, 'MQD and MQCTL must be set (meson sets them)');
  check(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: install Debian's chromium (scripts/deps.sh)`);
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  setStep('launch chromium');
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--disable-dev-shm-usage', '--disable-gpu'],
    timeout: 3 * WAIT_MS,
  });
  log(`chromium ${browser.version()}, node ${process.version}`);
  await openBroker();
  await authBroker();
  log(`all checks passed in ${((Date.now() - t0) / 1000).toFixed(1)} s; screenshots in ${ARTIFACTS}`);
}

function cleanup() {
  for (const c of children) if (!c.exited) c.proc.kill('SIGKILL');
  for (const d of tmpdirs) fs.rmSync(d, { recursive: true, force: true });
}

process.on('SIGTERM', () => {
  cleanup();
  process.exit(1);
});

let rc = 0;
try {
  await main();
} catch (e) {
  rc = 1;
  console.error(`[dashboard] FAILED: ${e.message}`);
  if (lastPage && !lastPage.isClosed()) {
    const file = path.join(ARTIFACTS, 'dashboard-failure.png');
    await lastPage.screenshot({ path: file, fullPage: true }).catch(() => {});
    console.error(`[dashboard] the page at the failure: ${file}`);
  }
  for (const c of children) {
    try {
      console.error(`---- mqd ${c.name} log (the end) ----\n${fs.readFileSync(c.logPath, 'utf8').slice(-3000)}`);
    } catch {
      /* no log */
    }
  }
} finally {
  if (browser) await browser.close().catch(() => {});
  cleanup();
}
process.exit(rc);
