import { Worker } from 'node:worker_threads';

/**
 * Checks in a thread of its own, so that a main thread busy for minutes (training runs synchronously between
 * batches) cannot delay it, whether the parent process still lives: when it dies, this process is handed to
 * another parent and `process.ppid` changes. Then it ends the process the way `kill` would.
 */
const WATCH = `
const { workerData } = require('node:worker_threads');
const check = () => {
  if (process.ppid !== workerData) process.kill(process.pid, 'SIGTERM');
};
check();
setInterval(check, 250);
`;

/**
 * Ends this process when `parent` (the pid of the process that spawned it, passed down by that process: one that died
 * before this one started is caught too) is gone, however it died (SIGKILL included). The watch does not keep this
 * process alive once its work is done. Used by the server's demo builds.
 */
export function exitWithParent(parent: number): void {
  const w = new Worker(WATCH, { eval: true, workerData: parent });
  // a watch that cannot run must not fail the build it watches
  w.on('error', () => undefined);
  w.unref();
}
