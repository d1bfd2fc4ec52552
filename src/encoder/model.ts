import fs from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { fail, messageOf } from '../errors.js';
import { toFloats, type Pixels } from '../../data/images.js';
import { buildConv } from './conv.js';
import { buildDense, type AutoencoderParts } from './dense.js';
import { restoreLike, restoreTypical, standardiseRows } from './input-scale.js';
import { modelManifestSchema, type ArchConfig, type ModelManifest, type Regularisers } from './manifest.js';
import { loadLayersModel, saveLayersModel, swapDir } from './model-io.js';

const MANIFEST = 'manifest.json';
const EXTRAS = 'extras.json';

export function buildParts(arch: ArchConfig, seed: number): AutoencoderParts {
  return arch.arch === 'dense' ? buildDense(arch, seed) : buildConv(arch, seed);
}

/** The code a trained encoder gives for a batch: linear, or sigmoid probabilities for binary (hashing) models. */
export function codeFromPre(z: tf.Tensor, manifest: Pick<ModelManifest, 'regularisers'>): tf.Tensor {
  const r = manifest.regularisers;
  if (!r.binaryBits) return z;
  // A median-binarized code is shifted so that every unit's cut point lands on 0.5, like a noise-trained one.
  return tf.sigmoid(r.binarize === 'median' ? tf.sub(z, thresholdsOf(r)) : z);
}

function thresholdsOf(r: Regularisers): tf.Tensor1D {
  if (!r.binaryThresholds || r.binaryThresholds.length !== r.binaryBits) throw fail('MANIFEST_MISMATCH', `the model's binary thresholds do not match its ${r.binaryBits} bits; retrain it`);
  return tf.tensor1d(r.binaryThresholds);
}

/** The decoder's input for a pre-activation code: a median-binarized model was trained on the plain code. */
function decoderInput(z: tf.Tensor, manifest: Pick<ModelManifest, 'regularisers'>): tf.Tensor {
  return manifest.regularisers.binarize === 'median' ? z : codeFromPre(z, manifest);
}

export function outputFromLogits(logits: tf.Tensor, output: ModelManifest['output']): tf.Tensor {
  if (output === 'linear') return logits;
  return output === 'softmax' ? tf.softmax(logits) : tf.sigmoid(logits);
}

/**
 * Per-item reconstruction error of a batch: mean squared error per value of the network's input (sigmoid, linear),
 * KL(input words ‖ output) (softmax).
 */
function itemErrors(x: tf.Tensor2D, logits: tf.Tensor, output: ModelManifest['output']): tf.Tensor1D {
  if (output !== 'softmax') return tf.mean(tf.squaredDifference(outputFromLogits(logits, output), x), 1);
  const p = tf.div(x, tf.maximum(tf.sum(x, 1, true), 1e-12));
  const logP = tf.log(tf.maximum(p, 1e-12));
  return tf.sum(tf.mul(p, tf.sub(logP, tf.logSoftmax(logits))), 1);
}

/** A batch of inputs as a tensor: bytes are read as v/255, floats as they are. */
export function inputTensor(x: Pixels, n: number, dim: number): tf.Tensor2D {
  return tf.tensor2d(toFloats(x), [n, dim]);
}

/** Whether a model standardises each image before its encoder (see INPUT_SCALES). */
function isStandardised(m: ModelManifest): boolean {
  return m.input.type === 'pixels' && m.input.scale === 'standardised';
}

/** A batch as the network's input: pixels read as [0,1], standardised per image when the model is. */
function networkInput(m: ModelManifest, x: Pixels, n: number, dim: number): tf.Tensor2D {
  const xb = inputTensor(x, n, dim);
  return isStandardised(m) ? standardiseRows(xb) : xb;
}

/** A trained autoencoder with its manifest: encodes and reconstructs flat float inputs. */
export class TrainedModel {
  constructor(
    readonly manifest: ModelManifest,
    readonly parts: AutoencoderParts,
    /** data the model needs besides its weights (a text model's vocabulary) */
    readonly extras: Record<string, unknown> = {},
  ) {}

  get codeDim(): number {
    return this.manifest.codeDim;
  }
  get inputDim(): number {
    return this.manifest.inputDim;
  }

  private batched(x: Pixels, n: number, outDim: number, batch: number, fn: (xb: tf.Tensor2D) => tf.Tensor): Float32Array {
    this.checkInput(x, n);
    const out = new Float32Array(n * outDim);
    for (let s = 0; s < n; s += batch) {
      const e = Math.min(n, s + batch);
      const y = tf.tidy(() => fn(networkInput(this.manifest, x.subarray(s * this.inputDim, e * this.inputDim), e - s, this.inputDim)));
      out.set(y.dataSync() as Float32Array, s * outDim);
      y.dispose();
    }
    return out;
  }

  private checkInput(x: Pixels, n: number): void {
    if (x.length !== n * this.inputDim) throw fail('INVALID_DIM', `input holds ${x.length / Math.max(n, 1)} values per item; this model takes ${this.inputDim}`);
  }

  /** The encoder's plain (pre-activation) outputs, n × codeDim. */
  preCodes(x: Pixels, n: number, batch = 1024): Float32Array {
    return this.batched(x, n, this.codeDim, batch, (xb) => this.parts.encoder.predict(xb) as tf.Tensor);
  }

  /**
   * For a median-binarized model, the same model with each code unit's cut point fitted on its training items
   * (no labels): the unit's median, so every bit splits the collection in half. Other models are returned as they are.
   */
  withBinaryThresholds(x: Pixels, n: number): TrainedModel {
    const r = this.manifest.regularisers;
    if (!r.binaryBits || r.binarize !== 'median') return this;
    const z = this.preCodes(x, n);
    const d = this.codeDim;
    const col = new Float32Array(n);
    const binaryThresholds = Array.from({ length: d }, (_, j) => {
      for (let i = 0; i < n; i++) col[i] = z[i * d + j]!;
      col.sort();
      return n % 2 ? col[n >> 1]! : (col[n / 2 - 1]! + col[n / 2]!) / 2;
    });
    return new TrainedModel({ ...this.manifest, regularisers: { ...r, binaryThresholds } }, this.parts, this.extras);
  }

  /** Codes (n × codeDim) of n flat inputs. */
  encode(x: Pixels, n: number, batch = 1024): Float32Array {
    return this.batched(x, n, this.codeDim, batch, (xb) => codeFromPre(this.parts.encoder.predict(xb) as tf.Tensor, this.manifest));
  }

  /**
   * Reconstructions (n × inputDim) of n flat inputs, as pixels in [0,1] for image models (a standardised model's
   * output gets each image's own brightness and contrast back).
   */
  reconstruct(x: Pixels, n: number, o: { batch?: number } = {}): Float32Array {
    const out = this.batched(x, n, this.inputDim, o.batch ?? 1024, (xb) => {
      const code = decoderInput(this.parts.encoder.predict(xb) as tf.Tensor, this.manifest);
      return outputFromLogits(this.parts.decoder.predict(code) as tf.Tensor, this.manifest.output);
    });
    return isStandardised(this.manifest) ? restoreLike(out, n, this.inputDim, x) : out;
  }

  /**
   * Codes (n × codeDim) and each item's reconstruction error in one pass: the mean squared error per value for
   * pixel models, the KL divergence of the output from the input's word distribution for softmax (text) models.
   */
  encodeScored(x: Pixels, n: number, batch = 1024): { codes: Float32Array; errors: Float32Array } {
    this.checkInput(x, n);
    const codes = new Float32Array(n * this.codeDim);
    const errors = new Float32Array(n);
    for (let s = 0; s < n; s += batch) {
      const e = Math.min(n, s + batch);
      const [code, err] = tf.tidy(() => {
        const xb = networkInput(this.manifest, x.subarray(s * this.inputDim, e * this.inputDim), e - s, this.inputDim);
        const pre = this.parts.encoder.predict(xb) as tf.Tensor;
        const logits = this.parts.decoder.predict(decoderInput(pre, this.manifest)) as tf.Tensor;
        return [codeFromPre(pre, this.manifest), itemErrors(xb, logits, this.manifest.output)];
      });
      codes.set(code.dataSync() as Float32Array, s * this.codeDim);
      errors.set(err.dataSync() as Float32Array, s);
      tf.dispose([code, err]);
    }
    return { codes, errors };
  }

  /** Each item's reconstruction error (see encodeScored). */
  reconstructionErrors(x: Pixels, n: number, batch = 1024): Float32Array {
    return this.encodeScored(x, n, batch).errors;
  }

  /**
   * Decodes codes (n × codeDim) to outputs. A standardised model gives pixels back with the brightness and contrast of
   * `like` (the n images the codes came from) when given, else with its training images' typical ones.
   */
  decode(codes: Float32Array, n: number, o: { like?: Pixels; batch?: number } = {}): Float32Array {
    const { like, batch = 1024 } = o;
    const r = this.manifest.regularisers;
    if (like) this.checkInput(like, n);
    const out = new Float32Array(n * this.inputDim);
    for (let s = 0; s < n; s += batch) {
      const e = Math.min(n, s + batch);
      const y = tf.tidy(() => {
        let c: tf.Tensor = tf.tensor2d(codes.subarray(s * this.codeDim, e * this.codeDim), [e - s, this.codeDim]);
        if (r.binarize === 'median') {
          // back from the shifted sigmoid to the plain code the decoder was trained on
          const p = tf.clipByValue(c, 1e-6, 1 - 1e-6);
          c = tf.add(tf.sub(tf.log(p), tf.log1p(tf.neg(p))), thresholdsOf(r));
        }
        return outputFromLogits(this.parts.decoder.predict(c) as tf.Tensor, this.manifest.output);
      });
      out.set(y.dataSync() as Float32Array, s * this.inputDim);
      y.dispose();
    }
    if (!isStandardised(this.manifest)) return out;
    if (like) return restoreLike(out, n, this.inputDim, like);
    const typical = this.manifest.input.type === 'pixels' ? this.manifest.input.typical : undefined;
    if (!typical) throw fail('MANIFEST_MISMATCH', 'this standardised model has no typical brightness to show codes with; retrain it');
    return restoreTypical(out, typical);
  }

  /** Saves into `dir` atomically (written beside it, then renamed into place). */
  async save(dir: string): Promise<void> {
    const tmp = `${dir.replace(/\/+$/, '')}.tmp-${process.pid}-${Date.now()}`;
    await fs.mkdir(tmp, { recursive: true });
    try {
      await saveLayersModel(this.parts.encoder, path.join(tmp, 'encoder'));
      await saveLayersModel(this.parts.decoder, path.join(tmp, 'decoder'));
      await fs.writeFile(path.join(tmp, EXTRAS), JSON.stringify(this.extras));
      await fs.writeFile(path.join(tmp, MANIFEST), JSON.stringify(this.manifest, null, 2));
      await fs.mkdir(path.dirname(path.resolve(dir)), { recursive: true });
      await swapDir(tmp, dir);
    } catch (e) {
      await fs.rm(tmp, { recursive: true, force: true });
      throw e;
    }
  }

  /** Loads a model directory and checks its manifest against the stored networks. */
  static async load(dir: string): Promise<TrainedModel> {
    let raw: unknown;
    try {
      raw = JSON.parse(await fs.readFile(path.join(dir, MANIFEST), 'utf8'));
    } catch (e) {
      throw fail('MODEL_NOT_FOUND', `no model at '${dir}' (${messageOf(e)}); train one with \`latentdex train --out ${dir}\``, e);
    }
    const parsed = modelManifestSchema.safeParse(raw);
    if (!parsed.success) {
      throw fail('MANIFEST_MISMATCH', `model manifest in '${dir}' is invalid or from another version: ${parsed.error.issues[0]?.path.join('.')} ${parsed.error.issues[0]?.message}; retrain the model`);
    }
    const manifest = parsed.data;
    const encoder = await loadLayersModel(path.join(dir, 'encoder'));
    const decoder = await loadLayersModel(path.join(dir, 'decoder'));
    const inShape = encoder.inputs[0]!.shape;
    const codeShape = encoder.outputs[0]!.shape;
    const outShape = decoder.outputs[0]!.shape;
    if (inShape[1] !== manifest.inputDim || codeShape[1] !== manifest.codeDim || outShape[1] !== manifest.inputDim) {
      encoder.dispose();
      decoder.dispose();
      throw fail('MANIFEST_MISMATCH', `model in '${dir}' does not match its manifest (input ${inShape[1]} vs ${manifest.inputDim}, code ${codeShape[1]} vs ${manifest.codeDim}); retrain it`);
    }
    let extras: Record<string, unknown> = {};
    try {
      extras = JSON.parse(await fs.readFile(path.join(dir, EXTRAS), 'utf8')) as Record<string, unknown>;
    } catch {
      // models without extras
    }
    return new TrainedModel(manifest, { encoder, decoder }, extras);
  }

  dispose(): void {
    this.parts.encoder.dispose();
    this.parts.decoder.dispose();
  }
}
