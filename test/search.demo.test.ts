import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import request from 'supertest';
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
    assert.match(digits!.error ?? '', /stopped by SIGTERM/);
    assert.equal(brown!.state, 'queued');
    assert.deepEqual(
      new DemoBuilds({ dataDir }).status().map((b) => b.name),
      ['digits', 'brown'],
    );
  });
});
