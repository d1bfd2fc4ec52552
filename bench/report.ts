import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BENCH_FILE = path.join(ROOT, 'docs', 'benchmarks.md');

/** Machine, Node and backend line every benchmark table carries. */
export function environment(backend: string): string {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  return `${new Date().toISOString().slice(0, 10)} · ${os.cpus().length} × ${cpu} · ${Math.round(os.totalmem() / 2 ** 30)} GiB · Node ${process.version} · tfjs backend ${backend}`;
}

/** Prints a benchmark's section and writes it into docs/benchmarks.md between its markers. */
export function publish(name: string, title: string, body: string): void {
  const section = `<!-- bench:${name} -->\n## ${title}\n\n${body.trim()}\n<!-- /bench:${name} -->`;
  process.stdout.write(`${section}\n`);
  fs.mkdirSync(path.dirname(BENCH_FILE), { recursive: true });
  let doc = fs.existsSync(BENCH_FILE) ? fs.readFileSync(BENCH_FILE, 'utf8') : '# Benchmarks\n\nWritten by `npm run bench:*`; each table holds its anchor measured in the same run on the same machine.\n';
  const re = new RegExp(`<!-- bench:${name} -->[\\s\\S]*?<!-- /bench:${name} -->`);
  doc = re.test(doc) ? doc.replace(re, section) : `${doc.trimEnd()}\n\n${section}\n`;
  const tmp = `${BENCH_FILE}.tmp`;
  fs.writeFileSync(tmp, doc);
  fs.renameSync(tmp, BENCH_FILE);
}

export function table(header: string[], rows: (string | number)[][]): string {
  return [`| ${header.join(' | ')} |`, `|${header.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}
