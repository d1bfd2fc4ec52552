import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { Collection } from '../src/indexer/collection.js';
import { ensureBrownInChild } from '../src/search/demo.js';
import { backend, tmpDir } from './helpers.js';

before(backend);

describe('demo collections', () => {
  it('builds brown in a child process (the second core) once, and reports when it is already there', async () => {
    const dataDir = tmpDir();
    assert.equal(await ensureBrownInChild({ dataDir, quiet: true, epochs: 1 }), true);
    const c = await Collection.open(dataDir, 'brown');
    assert.equal(c.count, 4966);
    assert.equal(c.model.manifest.kind, 'text');
    assert.equal(c.model.manifest.training.epochs, 1);
    c.close();
    assert.equal(await ensureBrownInChild({ dataDir, quiet: true }), false);
  });
});
