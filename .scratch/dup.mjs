import fs from 'node:fs'; import path from 'node:path'; import os from 'node:os'; import sharp from 'sharp';
const D = '/work/main/dist';
const { initBackend } = await import(`${D}/src/encoder/backend.js`);
const { loadImageSource } = await import(`${D}/data/sources.js`);
const { fitImageModel } = await import(`${D}/src/encoder/fit.js`);
const { buildCollection } = await import(`${D}/src/indexer/build.js`);
const { imageCollectionSettings, imageItemStream } = await import(`${D}/src/indexer/items.js`);
const { neighborTable } = await import(`${D}/src/search/neighbors.js`);
const { rawDistance } = await import(`${D}/src/search/duplicates.js`);
await initBackend({});
const src = '/tmp/latentdex-emoji';
const files = fs.readdirSync(src, { recursive: true }).map(String).filter((f) => f.endsWith('.png')).sort();
const pick = files.filter((_, i) => i % 3 === 0).slice(0, 600);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dup-')); const truth = new Map();
for (const [i, f] of pick.entries()) {
  const from = path.join(src, f); const base = `e${String(i).padStart(3, '0')}`;
  fs.copyFileSync(from, path.join(dir, `${base}.png`));
  if (i % 4 !== 0) continue;
  fs.copyFileSync(from, path.join(dir, `${base}-copy.png`));
  await sharp(from).resize(48, 48).png().toFile(path.join(dir, `${base}-small.png`));
  await sharp(from).flatten({ background: '#ffffff' }).jpeg({ quality: 80 }).toFile(path.join(dir, `${base}-jpeg.jpg`));
  await sharp(from).extract({ left: 2, top: 2, width: 60, height: 60 }).png().toFile(path.join(dir, `${base}-crop.png`));
}
const set = await loadImageSource(`dir:${dir}`, { quiet: true });
console.log(set.width, set.height, set.channels, set.fit, set.background);
const model = await fitImageModel(set, { quiet: true });
const c = await buildCollection(model, imageItemStream(set), { dataDir: fs.mkdtempSync('/tmp/dupc-'), name: 'x', ...imageCollectionSettings(model, set), quiet: true });
const t = neighborTable(c);
const med = (a) => a.slice().sort((x, y) => x - y)[a.length >> 1];
const nnCode = []; for (let r = 0; r < t.ids.length; r++) nnCode.push(t.distances[r * 10]);
const rows = c.itemRows(); const idOf = new Map(rows.map((r) => [r.key, r.id]));
const rd = rawDistance(c); const code = (id) => c.codeOf(id);
const l2 = (a, b) => Math.sqrt(a.reduce((s, v, i) => s + (v - b[i]) ** 2, 0));
const nnRaw = []; for (let r = 0; r < t.ids.length; r += 3) { const j = t.neighbors[r * 10]; nnRaw.push(rd(c.rawOf(t.ids[r]), c.rawOf(j))); }
const mc = med(nnCode), mr = med(nnRaw); console.log('median code', mc, 'median raw', mr);
for (const kind of ['copy', 'small', 'jpeg', 'crop']) {
  const cs = [], rs = [];
  for (const k of rows.map((r) => r.key).filter((k) => k.includes(`-${kind}`))) {
    const o = k.replace(/-(copy|small|jpeg|crop)\.(png|jpg)$/, '.png');
    const a = idOf.get(k), b = idOf.get(o); cs.push(l2(code(a), code(b)) / mc); rs.push(rd(c.rawOf(a), c.rawOf(b)) / mr);
  }
  const q = (v) => [0.5, 0.9, 1].map((p) => v.slice().sort((x, y) => x - y)[Math.min(v.length - 1, Math.floor(p * v.length))].toFixed(2));
  console.log(kind, 'code/median p50,p90,max', q(cs), 'raw/median', q(rs));
}
