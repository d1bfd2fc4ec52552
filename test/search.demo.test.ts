import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import request from 'supertest';
import { BuildLock } from '../src/indexer/build-lock.js';
import { collectionExists } from '../src/indexer/build.js';
import { Collection } from '../src/indexer/collection.js';
import { createApp } from '../src/search/app.js';
import { DemoBuilds } from '../src/search/demo.js';
import { SearchEngine } from '../src/search/engine.js';
import { backend, tmpDir } from './helpers.js';

before(backend);

describe('DemoBuilds', () => {
  it('builds the missing demo collections in child processes while the server answers, then serves them', async () => {
    const dataDir = tmpDir();
    const demo = new DemoBuilds({ dataDir, quiet: true, epochs: 1 });
    assert.deepEqual(
      demo.status().map((b) => [b.name, b.state]),
      [
        ['digits', 'queued'],
        ['brown', 'queued'],
      ],
    );
    const engine = new SearchEngine({ dataDir, quiet: true });
    const app = createApp({ engine, demo });
    demo.start();
    // the server answers while both builds run
    const during = await request(app).get('/api/health').expect(200);
    assert.deepEqual(
      during.body.demo.map((b: { state: string }) => b.state),
      ['building', 'building'],
    );
    await demo.done();
    for (const b of demo.status()) {
      assert.equal(b.state, 'ready', `${b.name}: ${b.error}`);
      assert.equal(b.percent, 100);
      // every progress bar prints a last line when it stops: the phase of the build's last bar
      assert.ok(b.phase, `${b.name} reported no progress`);
    }
    const list = await request(app).get('/api/collections').expect(200);
    assert.deepEqual(list.body.collections.map((c: { name: string; count: number }) => [c.name, c.count]), [
      ['brown', 4966],
      ['digits', 10000],
    ]);
    await engine.close();
    const c = await Collection.open(dataDir, 'digits');
    assert.equal(c.model.manifest.training.epochs, 1);
    c.close();
    assert.deepEqual(new DemoBuilds({ dataDir }).status(), [], 'nothing left to build');
  });

  it('reports a build that fails with its reason and the command to retry', async () => {
    const file = path.join(tmpDir(), 'not-a-folder');
    fs.writeFileSync(file, 'x');
    const demo = new DemoBuilds({ dataDir: file, quiet: true, epochs: 1 }).start();
    await demo.done();
    for (const b of demo.status()) {
      assert.equal(b.state, 'failed');
      assert.match(b.error ?? '', /is a file/);
      assert.match(b.error ?? '', new RegExp(`latentdex build --collection ${b.name} --source ${b.source}`));
    }
  });

  it('stops its builds when closed, leaving no collection and the rest queued', async () => {
    const dataDir = tmpDir();
    const demo = new DemoBuilds({ dataDir, quiet: true, epochs: 1, parallel: 1 }).start();
    demo.close();
    await demo.done();
    const [digits, brown] = demo.status();
    assert.equal(digits!.state, 'failed');
    assert.match(digits!.error ?? '', /server shut down/);
    assert.equal(brown!.state, 'queued');
    assert.deepEqual(
      new DemoBuilds({ dataDir }).status().map((b) => b.name),
      ['digits', 'brown'],
    );
  });

  it('builds each collection once when two servers start on one empty data directory; both then serve it', async () => {
    const dataDir = tmpDir();
    const a = new DemoBuilds({ dataDir, quiet: true, epochs: 1, parallel: 1 }).start();
    const b = new DemoBuilds({ dataDir, quiet: true, epochs: 1, parallel: 1 }).start();
    await Promise.all([a.done(), b.done()]);
    const [sa, sb] = [a.status(), b.status()];
    for (let i = 0; i < sa.length; i++) {
      assert.equal(sa[i]!.state, 'ready', `${sa[i]!.name}: ${sa[i]!.error}`);
      assert.equal(sb[i]!.state, 'ready', `${sb[i]!.name}: ${sb[i]!.error}`);
      // exactly one of the two servers built it; the other waited for that build
      assert.equal(Number(sa[i]!.elsewhere) + Number(sb[i]!.elsewhere), 1, sa[i]!.name);
    }
  });

  it('ends its builds when the server process is killed with SIGKILL, leaving no lock and no collection', async () => {
    const dataDir = tmpDir();
    const cli = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'latentdex.js');
    const server = spawn(process.execPath, [cli, '--data-dir', dataDir, '--quiet', 'serve', '--demo', '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = once(server, 'exit');
    // the server prints its address once it serves, its builds take their locks as they start
    await until(() => BuildLock.isHeld(dataDir, 'digits'), 60_000, 'the digits build started');
    server.kill('SIGKILL');
    await exited;
    await until(() => !BuildLock.isHeld(dataDir, 'digits') && !BuildLock.isHeld(dataDir, 'brown'), 60_000, 'the orphaned builds ended');
    assert.equal(collectionExists(dataDir, 'digits'), false);
  });
});

/** Polls `ok` until it holds; fails the test with `what` after `ms`. */
async function until(ok: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
