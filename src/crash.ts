/**
 * Fault injection for crash tests: `LATENTDEX_CRASH_AT=<point>` kills this process with SIGKILL when it reaches
 * that point of a write (`write:before-commit`, `write:after-commit`, `graph:before-rename`,
 * `build:before-publish`, `build:after-publish`), so tests and `npm run bench:crash` can show that every point
 * leaves the old or the new state. `LATENTDEX_PAUSE_AT=<point>` stops there instead (`store:before-commit`), saying
 * so on stderr, until the process is signalled: a test interrupts a writer at a known step. Read once; unset in
 * normal use.
 */
const AT = process.env.LATENTDEX_CRASH_AT;
const PAUSE = process.env.LATENTDEX_PAUSE_AT;

export function crashPoint(name: string): void {
  if (AT === name) process.kill(process.pid, 'SIGKILL');
}

/** Never resolves at the point `LATENTDEX_PAUSE_AT` names (the process waits for a signal); at once elsewhere. */
export function pausePoint(name: string): Promise<void> {
  if (PAUSE !== name) return Promise.resolve();
  process.stderr.write(`paused at ${name}\n`);
  setInterval(() => undefined, 1 << 30);
  return new Promise(() => undefined);
}
