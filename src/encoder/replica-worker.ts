/*
 * A training thread of GradientReplicas (data-parallel.ts): holds a copy of the model; for each shard it is sent, loads
 * the shared weights and writes the shard's gradient into the memory it shares with the training thread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { messageOf } from '../errors.js';
import { initBackend } from './backend.js';
import { buildParts } from './model.js';
import { assignPacked, packTensors, shardGradients, type ReplicaInit, type ReplicaReply, type ReplicaRequest } from './data-parallel.js';
import { trainableVars } from './objective.js';

const port = parentPort!;
const { spec, weights, grads } = workerData as ReplicaInit;
await initBackend({ prefer: spec.backend });
const parts = buildParts(spec.arch, 0);
const vars = trainableVars(parts);

function answer(m: ReplicaRequest): ReplicaReply {
  switch (m.type) {
    case 'grads':
      assignPacked(vars, weights);
      return { type: 'grads', loss: shardGradients(parts, vars, spec, m.shard, grads).loss };
    case 'weights':
      assignPacked(vars, weights);
      return { type: 'weights', flat: packTensors(vars) };
  }
}

port.on('message', (m: ReplicaRequest) => {
  try {
    const r = answer(m);
    port.postMessage(r, r.type === 'weights' ? [r.flat.buffer as ArrayBuffer] : []);
  } catch (e) {
    port.postMessage({ type: 'error', message: messageOf(e) } satisfies ReplicaReply);
  }
});
port.postMessage({ type: 'ready' } satisfies ReplicaReply);
