#!/usr/bin/env node
import { main } from '../dist/src/cli.js';

const code = await main(process.argv);
// a failed command has nothing left to do: work still pending (a store that stopped answering) must not keep it alive
if (code !== 0) process.exit(code);
