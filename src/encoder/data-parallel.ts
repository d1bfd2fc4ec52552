import os from 'node:os';
import { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { fail, isLatentdexError, messageOf } from '../errors.js';
import type { AutoencoderParts } from './dense.js';
import type { ArchConfig, Regularisers } from './manifest.js';
import { objective, type LossName } from './objective.js';

/** What a replica needs to rebuild the model being trained: its architecture, objective and optimiser. */
export interface ReplicaSpec {
  arch: ArchConfig;
  loss: LossName;
  regularisers: Regularisers;
  learningRate: number;
  backend: string;
}

/** One shard of a batch: `n` rows of inputs (and targets, when the decoder reproduces something else). */
export interface Shard {
  x: Float32Array;
  y?: Float32Array;
  n: number;
  seed: number;
}

export type ReplicaRequest = { type: 'grads'; shard: Shard } | { type: 'weights' };
export type ReplicaReply = { type: 'ready' } | { type: 'grads'; loss: number } | { type: 'weights'; flat: Float32Array } | { type: 'error'; message: string };
export interface ReplicaInit {
  spec: ReplicaSpec;
  /** the current weights, packed; written by the training thread between steps, read by replicas at each step */
  weights: Float32Array;
  /** where this replica writes the gradient of its shard (summed over its rows) */
  grads: Float32Array;
}

/** Values of `ts` end to end in one array (written into `out` when given). */
export function packTensors(ts: readonly tf.Tensor[], out?: Float32Array): Float32Array {
  const flat = out ?? new Float32Array(ts.reduce((s, t) => s + t.size, 0));
  let o = 0;
  for (const t of ts) {
    flat.set(t.dataSync() as Float32Array, o);
    o += t.size;
  }
  return flat;
}

/** Tensors shaped like `like`, copied in order from `flat`. */
export function unpackTensors(flat: Float32Array, like: readonly tf.Tensor[]): tf.Tensor[] {
  let o = 0;
  return like.map((v) => {
    // a copy: the cpu backend would keep the array itself, and `flat` (shared weights) changes every step
    const t = tf.tensor(flat.slice(o, o + v.size), v.shape, 'float32');
    o += v.size;
    return t;
  });
}

/** Overwrites `vars` with the values packed in `flat`. */
export function assignPacked(vars: readonly tf.Variable[], flat: Float32Array): void {
  tf.tidy(() => unpackTensors(flat, vars).forEach((t, i) => vars[i]!.assign(t)));
}

/** The summed loss of a shard's rows and its gradient (of the sum, packed in the order of `vars`). */
export function shardGradients(parts: AutoencoderParts, vars: readonly tf.Variable[], o: Pick<ReplicaSpec, 'loss' | 'regularisers'>, shard: Shard, out?: Float32Array): { sum: Float32Array; loss: number } {
  // tf.tidy walks what its callback returns element by element: a packed array must be filled outside it.
  const { value, grads } = tf.tidy(() => {
    const xb = tf.tensor2d(shard.x, [shard.n, shard.x.length / shard.n]);
    const yb = shard.y ? tf.tensor2d(shard.y, [shard.n, shard.y.length / shard.n]) : xb;
    return tf.variableGrads(() => objective(parts, xb, o.loss, o.regularisers, shard.seed, true, yb).mul(shard.n) as tf.Scalar, [...vars]);
  });
  const ordered = vars.map((v) => grads[v.name]!);
  try {
    return { sum: packTensors(ordered, out), loss: value.dataSync()[0]! };
  } finally {
    tf.dispose([value, ...ordered]);
  }
}

/** The model this thread trains: the copy that shard 0 of every batch goes to. */
export interface LocalModel {
  parts: AutoencoderParts;
  vars: readonly tf.Variable[];
  loss: LossName;
  regularisers: Regularisers;
}

/**
 * Threads for data-parallel training by default: two on the wasm backend (whose kernels use one thread each) when the
 * machine has two cores or more, whatever their number, so that a seed trains the same model on any such machine;
 * one on tfjs-node (which threads inside its kernels) and the cpu backend.
 */
export function defaultTrainThreads(backend: string): number {
  return backend === 'wasm' && os.availableParallelism() >= 2 ? 2 : 1;
}

/** The noise seed of shard t of a step whose one-thread seed is `seed` (shard 0 keeps it). */
export function shardSeed(seed: number, t: number): number {
  if (t === 0) return seed;
  let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(t, 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 16), 0x27d4eb2f);
  return (h ^ (h >>> 15)) >>> 0;
}

/** A worker thread holding a replica of the model. Replies come in request order. */
class Replica {
  private readonly pending: { resolve: (r: ReplicaReply) => void; reject: (e: Error) => void }[] = [];
  private failure: Error | undefined;
  private readonly broken: (e: Error) => void;

  constructor(private readonly worker: Worker) {
    worker.on('message', (r: ReplicaReply) => {
      const p = this.pending.shift();
      if (!p) return;
      if (r.type === 'error') p.reject(fail('INTERNAL', `a training thread failed: ${r.message}; retry with --threads 1`));
      else p.resolve(r);
    });
    const broken = (e: Error) => {
      this.failure ??= e;
      for (const p of this.pending.splice(0)) p.reject(e);
    };
    worker.on('error', (e) => broken(fail('INTERNAL', `a training thread failed: ${messageOf(e)}; retry with --threads 1`, e)));
    worker.on('exit', (code) => broken(fail('INTERNAL', `a training thread exited (code ${code}); retry with --threads 1`)));
    worker.on('messageerror', (e) => broken(fail('INTERNAL', `a training thread's answer could not be read (${messageOf(e)}); retry with --threads 1`, e)));
    this.broken = broken;
  }

  ready(): Promise<unknown> {
    return this.next('ready');
  }

  /** The next reply, which must be of `type`. */
  private next<T extends ReplicaReply['type']>(type: T): Promise<Extract<ReplicaReply, { type: T }>> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.pending.push({
        resolve: (r) => (r.type === type ? resolve(r as Extract<ReplicaReply, { type: T }>) : reject(fail('INTERNAL', `a training thread answered ${r.type}, expected ${type}`))),
        reject,
      });
    });
  }

  ask<T extends ReplicaReply['type']>(m: ReplicaRequest, type: T, transfer: ArrayBuffer[] = []): Promise<Extract<ReplicaReply, { type: T }>> {
    const reply = this.next(type);
    this.worker.postMessage(m, transfer);
    return reply;
  }

  async close(): Promise<void> {
    this.worker.removeAllListeners('exit');
    this.worker.removeAllListeners('error');
    this.worker.on('error', () => undefined);
    this.broken(fail('INTERNAL', 'the training threads were stopped'));
    await this.worker.terminate();
  }
}

const ADAM = { beta1: 0.9, beta2: 0.999, epsilon: 1e-7 };

/** A Float32Array of `n` values in memory that worker threads share. */
function shared(n: number): Float32Array {
  return new Float32Array(new SharedArrayBuffer(n * Float32Array.BYTES_PER_ELEMENT));
}

/**
 * Synchronous data-parallel training over model replicas in worker threads. Each step, every replica loads the shared
 * weights, computes the gradient of its shard of the batch into memory it shares with this thread, and this thread
 * sums the shards' gradients and takes one Adam step (tfjs's update rule) in a single pass over the packed weights.
 * Nothing is copied between threads but the shards themselves.
 */
export class GradientReplicas {
  private readonly moments: { m: Float32Array; v: Float32Array };
  private readonly own: Float32Array;
  private steps = 0;

  private constructor(
    private readonly replicas: Replica[],
    private readonly weights: Float32Array,
    private readonly grads: Float32Array[],
    private readonly learningRate: number,
  ) {
    this.moments = { m: new Float32Array(weights.length), v: new Float32Array(weights.length) };
    this.own = new Float32Array(weights.length);
  }

  /** Starts `count` replicas of a model whose variables hold `initial` (packed in order). */
  static async start(count: number, spec: ReplicaSpec, initial: Float32Array): Promise<GradientReplicas> {
    const weights = shared(initial.length);
    weights.set(initial);
    const grads = Array.from({ length: count }, () => shared(initial.length));
    const replicas: Replica[] = [];
    const pool = new GradientReplicas(replicas, weights, grads, spec.learningRate);
    try {
      for (const g of grads) replicas.push(new Replica(new Worker(new URL('./replica-worker.js', import.meta.url), { workerData: { spec, weights, grads: g } satisfies ReplicaInit })));
      await Promise.all(replicas.map((r) => r.ready()));
    } catch (e) {
      await pool.close();
      throw isLatentdexError(e) ? e : fail('INTERNAL', `training threads could not start (${messageOf(e)}); retry with --threads 1`, e);
    }
    return pool;
  }

  get size(): number {
    return this.replicas.length;
  }

  /**
   * One step: shard 0 here, shard i + 1 on replica i, all at once; then one Adam step on the mean gradient, whose
   * result `local` holds when this resolves. Resolves to the batch's mean loss.
   */
  async step(local: LocalModel, shards: readonly Shard[]): Promise<number> {
    // a last batch smaller than the pool has fewer shards: the replicas past them sit the step out
    if (shards.length < 1 || shards.length > this.replicas.length + 1 || shards.some((x) => x.n < 1)) {
      throw fail('INTERNAL', `a step takes 1 to ${this.replicas.length + 1} shards of at least one row, got ${shards.map((x) => x.n).join(', ')}`);
    }
    const remote = Promise.all(shards.slice(1).map((shard, i) => this.replicas[i]!.ask({ type: 'grads', shard }, 'grads', [shard.x.buffer as ArrayBuffer, ...(shard.y ? [shard.y.buffer as ArrayBuffer] : [])])));
    let own: { loss: number };
    try {
      own = shardGradients(local.parts, local.vars, local, shards[0]!, this.own);
    } catch (e) {
      // the replicas' answers are waited for: none may still be computing when the caller goes on (or rejects unheard)
      await remote.catch(() => undefined);
      throw isLatentdexError(e) ? e : fail('INTERNAL', `training failed on the main thread: ${messageOf(e)}`, e);
    }
    let loss = own.loss;
    for (const r of await remote) loss += r.loss;
    const n = shards.reduce((s, x) => s + x.n, 0);
    this.adam(1 / n, shards.length - 1);
    assignPacked(local.vars, this.weights);
    return loss / n;
  }

  /**
   * Adam (tfjs's formulation, bias-corrected moments) on this thread's gradient plus those of the first `used`
   * replicas, scaled by `scale`, in one pass.
   */
  private adam(scale: number, used: number): void {
    const { beta1, beta2, epsilon } = ADAM;
    this.steps++;
    const rate = this.learningRate / (1 - beta1 ** this.steps);
    const unbias2 = 1 / (1 - beta2 ** this.steps);
    const { m, v } = this.moments;
    const w = this.weights;
    const own = this.own;
    // Memory-bound: the pass reads five arrays of every weight, so gradients past the second are folded in first.
    for (let r = 1; r < used; r++) {
      const g = this.grads[r]!;
      for (let j = 0; j < own.length; j++) own[j]! += g[j]!;
    }
    const other = used > 0 ? this.grads[0]! : new Float32Array(own.length);
    for (let j = 0; j < w.length; j++) {
      const g = (own[j]! + other[j]!) * scale;
      const mj = beta1 * m[j]! + (1 - beta1) * g;
      const vj = beta2 * v[j]! + (1 - beta2) * g * g;
      m[j] = mj;
      v[j] = vj;
      w[j]! -= (rate * mj) / (Math.sqrt(vj * unbias2) + epsilon);
    }
  }

  /** The weights replica i computes its next shard with, packed (to check that the copies agree). */
  async weightsOf(i: number): Promise<Float32Array> {
    return (await this.replicas[i]!.ask({ type: 'weights' }, 'weights')).flat;
  }

  async close(): Promise<void> {
    await Promise.all(this.replicas.map((r) => r.close()));
  }
}
