import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page, type Route } from 'playwright-core';
import { selectImages } from '../data/images.js';
import { buildCollection } from '../src/indexer/build.js';
import { imageItems } from '../src/indexer/items.js';
import { serve, type Running } from '../src/search/serve.js';
import { backend, digits, pngOf, smallModel, tmpDir } from './helpers.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const OUT = path.join(ROOT, 'test-output');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const set = digits(300);
let running: Running;
let url: string;
let browser: Browser;
let page: Page;

before(async () => {
  await backend();
  const dataDir = tmpDir();
  const model = await smallModel(set, { epochs: 3 });
  (await buildCollection(model, imageItems(selectImages(set, Array.from({ length: 250 }, (_, i) => i))), { dataDir, name: 'digits', kind: 'image', space: 'l2', rawDim: 784, rawType: 'u8', params: {}, quiet: true })).close();
  model.dispose();
  running = await serve({ dataDir, host: '127.0.0.1', port: 0, webDir: path.join(ROOT, 'web'), maxUploadBytes: 200 * 1024, quiet: true });
  url = running.url;
  assert.ok(fs.existsSync(CHROMIUM), `Chromium not found at ${CHROMIUM}: apt-get install chromium (or set CHROMIUM_PATH)`);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
  });
  page = await browser.newPage({ viewport: { width: 1200, height: 1000 } });
  fs.mkdirSync(OUT, { recursive: true });
});

after(async () => {
  await browser?.close();
  await running?.close();
});

async function columnsFilled(k: number): Promise<void> {
  await page.waitForFunction((n) => document.querySelectorAll('#codes-hits li').length === n && document.querySelectorAll('#base-hits li').length === n, k, { timeout: 20000 });
}

describe('web page', () => {
  it('opens on a query from the URL and fills both columns with k results', async () => {
    await page.goto(`${url}/?c=digits&key=${set.keys[30]}&k=10`);
    await columnsFilled(10);
    assert.match(await page.textContent('#query-caption') ?? '', new RegExp(set.keys[30]!));
    assert.match(await page.textContent('#codes-stats') ?? '', /precision@10 \d+% · [\d.]+ ms/);
    assert.match(await page.textContent('#base-stats') ?? '', /precision@10/);
    assert.ok((await page.$$('.hit.match')).length > 0);
    await page.screenshot({ path: path.join(OUT, 'page-key.png'), fullPage: true });
  });

  it('searches by a clicked result and puts it in the URL', async () => {
    const key = await page.getAttribute('#base-hits li:nth-child(3) .hit', 'data-key');
    await page.click('#base-hits li:nth-child(3) .hit');
    await page.waitForFunction((k) => document.querySelector('#query-caption')?.textContent?.includes(k as string), key);
    await columnsFilled(10);
    assert.ok(new URL(page.url()).searchParams.get('key') === key);
    // Back shows the query before, Forward the clicked one again
    await page.goBack();
    await page.waitForFunction((k) => document.querySelector('#query-caption')?.textContent?.includes(k as string), set.keys[30]);
    await columnsFilled(10);
    assert.equal(new URL(page.url()).searchParams.get('key'), set.keys[30]);
    await page.goForward();
    await page.waitForFunction((k) => document.querySelector('#query-caption')?.textContent?.includes(k as string), key);
    await columnsFilled(10);
  });

  it('searches by an uploaded image and finds its stored twin first', async () => {
    await page.setInputFiles('#upload', { name: 'q.png', mimeType: 'image/png', buffer: pngOf(set.pixels.subarray(40 * 784, 41 * 784), 28, 28) });
    await page.waitForFunction(() => document.querySelector('#query-caption')?.textContent === 'q.png');
    await columnsFilled(10);
    assert.equal(await page.getAttribute('#base-hits li:first-child .hit', 'data-key'), set.keys[40]);
    await page.screenshot({ path: path.join(OUT, 'page-upload.png'), fullPage: true });
  });

  it('shows only the latest search when an earlier one answers late', async () => {
    const slow = `/items/${encodeURIComponent(set.keys[50]!)}/neighbors`;
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const hold = async (r: Route) => {
      await held;
      await r.continue();
    };
    const matches = (u: URL) => u.pathname.endsWith(slow);
    await page.route(matches, hold);
    try {
      const asked = page.waitForRequest((r) => r.url().includes(slow));
      const late = page.waitForResponse((r) => r.url().includes(slow));
      await page.goto(`${url}/?c=digits&key=${set.keys[50]}&k=10`);
      await asked;
      // a second search while the first is held: an upload of another digit
      await page.setInputFiles('#upload', { name: 'later.png', mimeType: 'image/png', buffer: pngOf(set.pixels.subarray(70 * 784, 71 * 784), 28, 28) });
      await page.waitForFunction(() => document.querySelector('#query-caption')?.textContent === 'later.png');
      await columnsFilled(10);
      release();
      await (await late).finished();
      // the late answer has been handled once its body is read and a frame has passed
      await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0))));
      assert.equal(await page.textContent('#query-caption'), 'later.png');
      assert.equal(await page.getAttribute('#base-hits li:first-child .hit', 'data-key'), set.keys[70]);
      assert.equal(await page.isHidden('#error'), true);
    } finally {
      release();
      await page.unroute(matches, hold);
    }
  });

  it('shows a readable error for a non-image and for an oversized upload', async () => {
    await page.setInputFiles('#upload', { name: 'notes.png', mimeType: 'image/png', buffer: Buffer.from('this is not an image') });
    await page.waitForSelector('#error:not([hidden])');
    assert.match(await page.textContent('#error') ?? '', /not an image format latentdex reads.*UNSUPPORTED_IMAGE.*results below are from the previous search/);
    assert.equal(await page.evaluate(() => document.body.classList.contains('stale')), true, 'the earlier results are dimmed');
    await page.setInputFiles('#upload', { name: 'big.png', mimeType: 'image/png', buffer: Buffer.alloc(300 * 1024, 7) });
    await page.waitForFunction(() => document.querySelector('#error')?.textContent?.includes('PAYLOAD_TOO_LARGE'));
    await page.screenshot({ path: path.join(OUT, 'page-error.png'), fullPage: true });
  });

  it('changes k from the keyboard and stays usable at 375 px', async () => {
    await page.setViewportSize({ width: 375, height: 800 });
    await page.goto(`${url}/?c=digits&key=${set.keys[5]}&k=10`);
    await columnsFilled(10);
    assert.equal(await page.evaluate(() => document.body.classList.contains('stale')), false, 'a search that answers is not dimmed');
    await page.focus('#k');
    await page.selectOption('#k', '5');
    await columnsFilled(5);
    assert.equal(new URL(page.url()).searchParams.get('k'), '5');
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);
    assert.equal(overflow, false, 'no horizontal scrolling at 375 px');
    await page.screenshot({ path: path.join(OUT, 'page-375.png'), fullPage: true });
    // a k over the server's most from the address shows that most, and says so
    await page.goto(`${url}/?c=digits&key=${set.keys[5]}&k=500`);
    await columnsFilled(100);
    assert.equal(await page.inputValue('#k'), '100');
    assert.match((await page.textContent('#error')) ?? '', /k=500 is over the most this server takes \(100\)/);
    // numbers that are not numbers are named and left out, never dropped in silence
    await page.goto(`${url}/?c=digits&key=${set.keys[5]}&k=abc&offset=-3&rerank=x`);
    await columnsFilled(10);
    const said = (await page.textContent('#error')) ?? '';
    for (const bad of ['k=abc', 'offset=-3', 'rerank=x']) assert.ok(said.includes(`${bad} is not a whole number`), said);
    assert.equal(new URL(page.url()).searchParams.get('rerank'), null);
    // rerank=0 (codes alone) is the server's to take, and kept
    await page.goto(`${url}/?c=digits&key=${set.keys[5]}&k=5&rerank=0`);
    await columnsFilled(5);
    assert.equal(new URL(page.url()).searchParams.get('rerank'), '0');
    assert.equal(await page.isVisible('#error'), false);
    // an unknown collection in the address is said, and the first one shown
    await page.goto(`${url}/?c=zzz&k=5&offset=x`);
    await columnsFilled(5);
    await page.waitForFunction(() => /'zzz'.*offset=x is not a whole number/.test(document.querySelector('#error')?.textContent ?? ''));
  });

  it('says where a re-ranked ranking ends, and what of its address a collection cannot show', async () => {
    // a 20-row shortlist holds 19 hits besides the query: the page past it is empty, and says why
    await page.goto(`${url}/?c=digits&key=${set.keys[5]}&k=5&rerank=20&offset=20`);
    await page.waitForSelector('#codes-hits li.end');
    assert.match((await page.textContent('#codes-hits li.end')) ?? '', /20-row shortlist/);
    assert.equal((await page.$$('#base-hits li')).length, 5);
    assert.equal(new URL(page.url()).searchParams.get('rerank'), '20');
    await page.goto(`${url}/?c=digits&k=5&label=zzz&label=3&q=a+typed+query`);
    await page.waitForFunction(() => /'zzz'.*typed query/.test(document.querySelector('#error')?.textContent ?? ''));
    assert.deepEqual(await page.$$eval('#labels option:checked', (els) => els.map((e) => e.getAttribute('value'))), ['3']);
  });

  it('filters both columns by the chosen labels and pages through them', async () => {
    await page.setViewportSize({ width: 1200, height: 900 });
    await page.goto(`${url}/?c=digits&key=${set.keys[5]}&k=5`);
    await columnsFilled(5);
    await page.selectOption('#labels', ['3', '8']);
    await page.waitForFunction(() => document.querySelector('#status')?.textContent?.includes('filter:'));
    await columnsFilled(5);
    const labels = await page.$$eval('.hit .lab', (els) => els.map((e) => (e.textContent ?? '').split(' ')[1]));
    assert.ok(labels.every((l) => l === '3' || l === '8'), labels.join(','));
    const first = await page.$$eval('#codes-hits .hit', (els) => els.map((e) => e.getAttribute('data-key')));
    await page.click('#next');
    await page.waitForFunction(() => document.querySelector('#page-info')?.textContent?.startsWith('hits 6–'));
    await columnsFilled(5);
    const second = await page.$$eval('#codes-hits .hit', (els) => els.map((e) => e.getAttribute('data-key')));
    assert.equal(second.filter((k) => first.includes(k)).length, 0, 'the next page repeats no hit');
    assert.match((await page.textContent('#codes-hits li:first-child .lab')) ?? '', /^#6 /);
    // the address holds the page and the filter: opened again, it shows the same hits
    const address = new URL(page.url()).searchParams;
    assert.deepEqual([address.get('offset'), address.getAll('label').sort()], ['5', ['3', '8']]);
    await page.goto(page.url());
    await page.waitForFunction(() => document.querySelector('#page-info')?.textContent?.startsWith('hits 6–'));
    await columnsFilled(5);
    assert.deepEqual(await page.$$eval('#codes-hits .hit', (els) => els.map((e) => e.getAttribute('data-key'))), second);
    await page.click('#prev');
    await page.waitForFunction(() => document.querySelector('#page-info')?.textContent?.startsWith('hits 1–'));
    assert.deepEqual(await page.$$eval('#codes-hits .hit', (els) => els.map((e) => e.getAttribute('data-key'))), first);
    await page.screenshot({ path: path.join(OUT, 'page-filter.png'), fullPage: true });
  });

  it('shows the most unusual items with their reconstructions, the duplicate groups, a denoised upload and the query’s novelty', async () => {
    await page.goto(`${url}/?c=digits&key=${set.keys[5]}&k=5`);
    await columnsFilled(5);
    await page.click('#outliers-go');
    await page.waitForFunction(() => document.querySelectorAll('#inspect-view .outliers li').length === 24);
    // each outlier shows the item and its reconstruction, and searches by it when clicked
    assert.equal(await page.$$eval('#inspect-view .outliers li:first-child img', (els) => els.length), 2);
    const key = await page.$eval('#inspect-view .outliers li:first-child .lab', (e) => e.textContent);
    await page.click('#inspect-view .outliers li:first-child .hit');
    await page.waitForFunction((k) => document.querySelector('#query-caption')?.textContent?.includes(k as string), key);
    await page.click('#duplicates-go');
    await page.waitForFunction(() => /groups|No near-duplicates/.test(document.querySelector('#inspect-stats')?.textContent ?? ''));
    await page.setInputFiles('#denoise', { name: 'n.png', mimeType: 'image/png', buffer: pngOf(set.pixels.subarray(7 * 784, 8 * 784), 28, 28) });
    await page.waitForFunction(() => document.querySelectorAll('#inspect-view .pair img').length === 2);
    await page.screenshot({ path: path.join(OUT, 'page-inspect.png'), fullPage: true });
    const inverted = Uint8Array.from(set.pixels.subarray(9 * 784, 10 * 784), (v) => 255 - v);
    await page.setInputFiles('#upload', { name: 'odd.png', mimeType: 'image/png', buffer: pngOf(inverted, 28, 28) });
    await page.waitForFunction(() => /more unusual than 9\d\.\d%|more unusual than 100\.0%/.test(document.querySelector('#novelty')?.textContent ?? ''));
    assert.equal(await page.isHidden('#novelty'), false);
  });

  it('keeps every control disabled, and asks nothing of the server, while no collection exists', async () => {
    const empty = await serve({ dataDir: tmpDir(), host: '127.0.0.1', port: 0, webDir: path.join(ROOT, 'web'), quiet: true });
    const asked: string[] = [];
    const listen = (r: { url(): string }) => asked.push(new URL(r.url()).pathname);
    page.on('request', listen);
    try {
      await page.goto(`${empty.url}/`);
      await page.waitForSelector('#error:not([hidden])');
      assert.match(await page.textContent('#error') ?? '', /No collections yet/);
      for (const id of ['#random', '#upload', '#outliers-go', '#duplicates-go', '#denoise', '#k']) assert.equal(await page.isDisabled(id), true, id);
      assert.deepEqual(asked.filter((p) => p.startsWith('/api/collections/')), [], 'no request names a collection');
    } finally {
      page.off('request', listen);
      await empty.close();
    }
  });
});
