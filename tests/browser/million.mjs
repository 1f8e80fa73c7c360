// million.mjs: timings of the dashboard on a big queue (a manual benchmark,
// not a meson test; docs/http.md "Dashboard" quotes its numbers).
//   MQ_HTTP=http://127.0.0.1:PORT MQ_QUEUE=big node tests/browser/million.mjs
// Fill the queue first, e.g. mqbench --scenario push --max-messages 1000000.
import { chromium } from 'playwright-core';

const base = process.env.MQ_HTTP;
const queue = process.env.MQ_QUEUE || 'big';
if (!base) {
  console.error('set MQ_HTTP to mqd\'s --http-listen URL');
  process.exit(2);
}
const browser = await chromium.launch({
  executablePath: process.env.MQ_CHROMIUM || '/usr/bin/chromium',
  args: ['--disable-dev-shm-usage', '--disable-gpu'],
});
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
const cdp = await page.context().newCDPSession(page);
await cdp.send('Performance.enable');
const ms = async (what, fn) => {
  const t = performance.now();
  await fn();
  console.log(`${what}: ${(performance.now() - t).toFixed(0)} ms`);
};
const range = () => page.locator('#m-range').textContent();
const rangeChange = async (before) =>
  page.waitForFunction((b) => document.getElementById('m-range').textContent !== b, before);

await ms('load / until the queue row shows its depth', async () => {
  await page.goto(`${base}/`);
  await page.locator(`#queues-body tr[data-queue="${queue}"] td[data-col="ready"]`).filter({ hasText: /\d/ }).waitFor();
});
console.log('ready shown:', await page.locator(`#queues-body tr[data-queue="${queue}"] td[data-col="ready"]`).textContent());
await ms('open the queue until 50 ready messages show', async () => {
  await page.click(`#queues-body tr[data-queue="${queue}"] td[data-col="name"] a`);
  await page.locator('#messages-body tr:nth-child(50)').waitFor();
});
for (let i = 1; i <= 3; i++) {
  const b = await range();
  await ms(`next page ${i}`, async () => {
    await page.click('#m-next');
    await rangeChange(b);
  });
}
let b = await range();
await ms('dead tab (dead index)', async () => {
  await page.click('#q-tabs a[data-state="dead"]');
  await rangeChange(b);
});
console.log('dead:', await range());
b = await range();
await ms('delayed tab (3 delayed after 1M ready: scans until found)', async () => {
  await page.click('#q-tabs a[data-state="delayed"]');
  await rangeChange(b);
});
console.log('delayed:', await range());
const first = await page.locator('#messages-body tr').first().getAttribute('data-id');
await ms('open a message', async () => {
  await page.goto(`${base}/#/q/${queue}/m/${first}`);
  await page.locator('#m-payload').filter({ hasText: /./ }).waitFor();
});
await page.goto(`${base}/`);
await page.waitForTimeout(10000); // ten polls
const m = Object.fromEntries((await cdp.send('Performance.getMetrics')).metrics.map((x) => [x.name, x.value]));
console.log(`after 10 s of polling: JS heap ${(m.JSHeapUsedSize / 1e6).toFixed(1)} MB, ${m.Nodes} DOM nodes`);
await browser.close();
