/**
 * Fault injection for crash tests: `LATENTDEX_CRASH_AT=<point>` kills this process with SIGKILL when it reaches
 * that point of a write (`write:before-commit`, `write:after-commit`, `graph:before-rename`,
 * `build:before-publish`, `build:after-publish`), so tests and `npm run bench:crash` can show that every point
 * leaves the old or the new state. Read once; unset in normal use.
 */
const AT = process.env.LATENTDEX_CRASH_AT;

export function crashPoint(name: string): void {
  if (AT === name) process.kill(process.pid, 'SIGKILL');
}
