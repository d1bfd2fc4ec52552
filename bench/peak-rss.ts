/*
 * Preloaded (`node --import`) into a process a benchmark spawns: at exit, writes the process's peak resident set
 * size in bytes (worker threads included) to the file named by LATENTDEX_PEAK_RSS_FILE.
 */
import fs from 'node:fs';

const out = process.env.LATENTDEX_PEAK_RSS_FILE;
if (out) process.on('exit', () => fs.writeFileSync(out, String(process.resourceUsage().maxRSS * 1024)));
