import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { progress } from '../src/progress.js';

/** A stream that is not a terminal and keeps what is written to it. */
function pipe(): { lines: string[]; stream: NodeJS.WriteStream } {
  const lines: string[] = [];
  const stream = { isTTY: false, write: (s: string) => lines.push(s.trimEnd()) } as unknown as NodeJS.WriteStream;
  return { lines, stream };
}

describe('progress on a pipe', () => {
  it('writes its first state and a final line, never the same line twice', () => {
    const a = pipe();
    const p = progress({ title: 'decode', total: 10, unit: 'images', stream: a.stream });
    p.update(10);
    p.stop();
    assert.equal(a.lines.length, 1, a.lines.join('\n'));
    assert.match(a.lines[0]!, /^decode 100% 10\/10 \| \d+ images\/s/);
    // a final state the last line did not show is written when the work stops (fields too)
    const b = pipe();
    const q = progress({ title: 'train', total: 4, fields: ['loss'], stream: b.stream });
    q.update(1, { loss: 3 });
    q.update(4, { loss: 2 });
    q.stop();
    assert.deepEqual(b.lines.map((l) => l.replace(/\| \d+ items\/s \| ETA \S+ /, '')), ['train 25% 1/4 | loss 3', 'train 100% 4/4 | loss 2']);
  });
});
