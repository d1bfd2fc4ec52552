import { Worker } from 'node:worker_threads';

/**
 * Checks in a thread of its own, so that a main thread busy for minutes (training runs synchronously between
 * batches) cannot delay it, whether the parent process still lives: when it dies, this process is handed to
 * another parent and `process.ppid` changes. Then it ends the process the way `kill` would.
 */
const WATCH = `
const { workerData } = require('node:worker_threads');
setInterval(() => {
  if (process.ppid !== workerData) process.kill(process.pid, 'SIGTERM');
}, 250);
`;

/**
 * Ends this process when the process that spawned it is gone, however it died (SIGKILL included). The watch does not
 * keep this process alive once its work is done. Used by the server's demo builds.
 */
export function exitWithParent(): void {
  new Worker(WATCH, { eval: true, workerData: process.ppid }).unref();
}
