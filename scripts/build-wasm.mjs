// Compiles every src/**/*.wat to the same path under dist/ (.wasm), with wabt; run by `npm run build`.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import wabtInit from 'wabt';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const wabt = await wabtInit();
const sources = fs.readdirSync(path.join(root, 'src'), { recursive: true }).filter((f) => String(f).endsWith('.wat'));
if (sources.length === 0) throw new Error('no .wat file found under src/ (Node ≥ 20.1 is needed for a recursive readdir)');
for (const rel of sources) {
  const src = path.join(root, 'src', String(rel));
  const out = path.join(root, 'dist', 'src', String(rel).replace(/\.wat$/, '.wasm'));
  const mod = wabt.parseWat(src, fs.readFileSync(src, 'utf8'), { simd: true });
  try {
    mod.validate();
    const { buffer } = mod.toBinary({});
    fs.mkdirSync(path.dirname(out), { recursive: true });
    const tmp = `${out}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, buffer);
    fs.renameSync(tmp, out);
  } finally {
    mod.destroy();
  }
}
console.log(`wasm: ${sources.length} module(s) compiled`);
