// Keeps one headless Chromium tab open on the Topic Browser (for
// bench/ui_cost.sh): prints "open" once the page has its live stream and
// tree, then stays until killed. Usage: node ui_open.js URL
'use strict';
const puppeteer = require('puppeteer-core');

(async () => {
  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  const page = await browser.newPage();
  await page.setViewport({width: 1400, height: 900});
  await page.goto(process.argv[2], {waitUntil: 'domcontentloaded'});
  await page.waitForSelector('#strip b', {timeout: 20000});
  console.log('open');
  const stop = async () => { await browser.close(); process.exit(0); };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
})().catch((e) => { console.error(e); process.exit(1); });
