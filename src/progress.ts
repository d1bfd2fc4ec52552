import cliProgress from 'cli-progress';

/** A progress reporter for long work: a live bar on a terminal, a few plain lines elsewhere (CI, pipes). */
export interface Progress {
  update(done: number, payload?: Record<string, string | number>): void;
  stop(): void;
}

export interface ProgressOptions {
  title: string;
  total: number;
  unit?: string;
  /** extra payload fields shown after the rate, e.g. loss */
  fields?: string[];
  quiet?: boolean;
  stream?: NodeJS.WriteStream;
  /** work done before this run (a resumed build): the rate and ETA count only what this run does */
  start?: number;
}

function fmtEta(s: number): string {
  if (!Number.isFinite(s) || s < 0) return '--';
  if (s < 60) return `${s.toFixed(0)}s`;
  return `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
}

export function progress(opts: ProgressOptions): Progress {
  const stream = opts.stream ?? process.stderr;
  const unit = opts.unit ?? 'items';
  const fields = opts.fields ?? [];
  const t0 = performance.now();
  const start = opts.start ?? 0;
  if (opts.quiet) return { update() {}, stop() {} };
  const extra = fields.map((f) => ` | ${f} {${f}}`).join('');
  if (stream.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        format: `${opts.title} [{bar}] {percentage}% {value}/{total} | {rate} ${unit}/s | ETA {etaf}${extra}`,
        stream,
        hideCursor: true,
        barsize: 24,
        etaBuffer: 50,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(opts.total, start, { rate: '0', etaf: '--', ...Object.fromEntries(fields.map((f) => [f, '-'])) });
    return {
      update(done, payload = {}) {
        const s = (performance.now() - t0) / 1000;
        const rate = (done - start) / Math.max(s, 1e-9);
        bar.update(done, { ...payload, rate: rate.toFixed(0), etaf: fmtEta((opts.total - done) / rate) });
      },
      stop() {
        bar.stop();
      },
    };
  }
  // Not a terminal: one line at most every 2 s, and a final one.
  let last = -Infinity;
  let lastDone = start;
  let lastPayload: Record<string, string | number> = {};
  // what the last line said (count and fields): the final line is not written twice
  let said = '';
  const line = (done: number, payload: Record<string, string | number>) => {
    said = JSON.stringify([done, payload]);
    const s = (performance.now() - t0) / 1000;
    const rate = (done - start) / Math.max(s, 1e-9);
    const pct = opts.total > 0 ? ((100 * done) / opts.total).toFixed(0) : '100';
    const ex = fields.map((f) => ` | ${f} ${payload[f] ?? '-'}`).join('');
    stream.write(`${opts.title} ${pct}% ${done}/${opts.total} | ${rate.toFixed(0)} ${unit}/s | ETA ${fmtEta((opts.total - done) / rate)}${ex}\n`);
  };
  return {
    update(done, payload = {}) {
      lastDone = done;
      // fields not given keep their last value, as cli-progress keeps them on a terminal
      lastPayload = { ...lastPayload, ...payload };
      const now = performance.now();
      if (now - last > 2000) {
        last = now;
        line(done, lastPayload);
      }
    },
    stop() {
      if (JSON.stringify([lastDone, lastPayload]) !== said) line(lastDone, lastPayload);
    },
  };
}

/** Logs a line to stderr unless quiet. */
export function log(msg: string, quiet = false): void {
  if (!quiet) process.stderr.write(`${msg}\n`);
}

/** "1 file", "3 files": a count with its noun for messages (`many` for irregular plurals). */
export function counted(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}
