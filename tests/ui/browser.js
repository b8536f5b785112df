// The Topic Browser in a real browser: headless Chromium driven by
// puppeteer-core against a running tagproc (tests/ui/run_browser.sh).
// Usage: node browser.js URL ARTEFACT_DIR [DOCS_SCREENSHOT.png]
// Prints "ok NAME" / "FAIL NAME" lines and exits 1 when a check failed.
'use strict';
const path = require('path');
const puppeteer = require('puppeteer-core');

const [url, outDir, docsShot] = process.argv.slice(2);
const EXPECTED = [
  'axis.x.Temperature', '_historian.Pressure', '_historian.Speed', 'status.Running',
  '_historian.FlowRate', '_historian.Vibration', 'status.DoorOpen', '_historian.SerialNumber',
];
let failed = 0;
function check(name, ok, detail) {
  console.log((ok ? 'ok ' : 'FAIL ') + name + (ok || !detail ? '' : ': ' + detail));
  if (!ok) failed++;
}

// Clicks selector; retried, as the tree is redrawn every second.
async function click(page, selector) {
  for (let i = 0; ; i++) {
    try {
      await page.click(selector);
      return;
    } catch (e) {
      if (i >= 10) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

async function leaves(page) {
  return page.$$eval('#tree .node.leaf', (ns) => ns.map((n) => n.dataset.topic));
}

async function main() {
  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--window-size=1400,900'],
  });
  try {
    const page = await browser.newPage();
    await page.setViewport({width: 1400, height: 900});
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('requestfailed', (r) => { if (!r.url().includes('/api/events')) errors.push('request failed: ' + r.url()); });
    await page.goto(url, {waitUntil: 'domcontentloaded'});

    await page.waitForFunction(() => document.querySelectorAll('#tree .node.leaf').length >= 8, {timeout: 20000});
    const names = await leaves(page);
    const missing = EXPECTED.filter((e) => !names.some((n) => n.endsWith(e)));
    check('tree shows the expected topics', missing.length === 0, 'missing ' + missing.join(', ') + ' in ' + names.join(', '));
    check('tree is built from UNS levels', await page.$$eval('#tree .node.branch .name', (ns) => ns.map((n) => n.textContent)).then((b) => ['umh', 'v1', 'enterprise', 'plant1', '_historian'].every((x) => b.includes(x))));
    await page.waitForSelector('#strip b', {timeout: 10000});
    const strip = await page.$eval('#strip', (e) => e.textContent);
    check('pipeline strip shows rates and queue', /in/.test(strip) && /queue/.test(strip) && /simulator/.test(strip), strip);
    await page.screenshot({path: path.join(outDir, 'tree.png')});

    const temp = names.find((n) => n.endsWith('axis.x.Temperature'));
    await click(page, `#tree .node.leaf[data-topic="${temp}"]`);
    await page.waitForFunction(() => {
      const v = document.getElementById('topic-value');
      const s = document.getElementById('sparkline');
      return v && v.textContent.trim() !== '' && s && Number(s.dataset.points) >= 3;
    }, {timeout: 20000});
    const value = await page.$eval('#topic-value', (e) => e.textContent.trim());
    check('clicking a tag shows its value', /^-?[0-9.]+$/.test(value), value);
    const points = await page.$eval('#sparkline polyline', (e) => e.getAttribute('points').trim().split(/\s+/).length);
    const circles = await page.$$eval('#sparkline circle', (c) => c.length);
    check('the sparkline has points', points >= 3 && circles === points, `${points} points, ${circles} circles`);
    const meta = await page.$eval('#topic-meta', (e) => e.textContent);
    check('the topic view lists metadata', meta.includes('opcua_node_id') && meta.includes('ns=1;i=2200'), meta);
    const rows = await page.$$eval('#topic-history tr', (r) => r.length);
    check('the history table has rows', rows >= 3, String(rows));
    await page.screenshot({path: path.join(outDir, 'topic.png')});
    if (docsShot) await page.screenshot({path: docsShot});

    await page.type('#search', 'Temperature');
    await page.waitForFunction(() => document.querySelectorAll('#tree .node.leaf').length === 1, {timeout: 10000});
    const found = await leaves(page);
    check('search by topic narrows the tree', found.length === 1 && found[0] === temp, found.join(', '));
    await page.screenshot({path: path.join(outDir, 'search.png')});
    await page.$eval('#search', (e) => { e.value = ''; });
    await page.type('#search', 'opcua_node_id=ns=1;i=2201');
    await page.waitForFunction(() => {
      const l = document.querySelectorAll('#tree .node.leaf');
      return l.length === 1 && l[0].dataset.topic.endsWith('_historian.Pressure');
    }, {timeout: 10000}).then(() => check('search by metadata narrows the tree', true),
      async (e) => check('search by metadata narrows the tree', false, (await leaves(page)).join(', ') || e.message));
    await page.$eval('#search', (e) => { e.value = ''; e.dispatchEvent(new Event('input')); });
    await page.waitForFunction(() => document.querySelectorAll('#tree .node.leaf').length >= 8, {timeout: 10000});

    await click(page, '.tabs button[data-tab="drops"]');
    await page.waitForSelector('.drop-reason[data-reason="js_error"] tr.drop', {timeout: 20000});
    const drop = await page.$eval('.drop-reason[data-reason="js_error"]', (e) => e.textContent);
    check('the Drops panel lists the forced js_error', drop.includes('forced failure for the Drops panel') && drop.includes('ns=1;i=2204'), drop.slice(0, 300));
    const reasons = await page.$eval('#drops-by-reason', (e) => e.textContent);
    check('the Drops panel counts by reason', /js_error\s*\d+/.test(reasons), reasons);
    await page.screenshot({path: path.join(outDir, 'drops.png')});

    await click(page, '.tabs button[data-tab="rules"]');
    await page.waitForSelector('#rules-table td.num', {timeout: 10000});
    const rules = await page.$eval('#rules-table', (e) => e.textContent);
    check('the Rules panel lists the rules', rules.includes('conditions[2]') && rules.includes('defaults'), rules.slice(0, 200));
    await page.screenshot({path: path.join(outDir, 'rules.png')});
    check('no page errors', errors.length === 0, errors.join('; '));
  } finally {
    await browser.close();
  }
}

main().then(() => process.exit(failed ? 1 : 0), (e) => {
  console.log('FAIL browser run: ' + (e && e.stack ? e.stack : e));
  process.exit(1);
});
