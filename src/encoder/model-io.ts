import fs from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { fail, messageOf } from '../errors.js';

const TOPOLOGY = 'model.json';
const WEIGHTS = 'weights.bin';

/** Writes a layers model as model.json + weights.bin into `dir` through a tfjs IOHandler (no tfjs-node needed). */
export async function saveLayersModel(model: tf.LayersModel, dir: string): Promise<void> {
  await fs.mkdir(dir, { recursive: true });
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const data = artifacts.weightData === undefined ? new ArrayBuffer(0) : tf.io.CompositeArrayBuffer.join(artifacts.weightData);
      const json = {
        format: artifacts.format ?? 'layers-model',
        generatedBy: artifacts.generatedBy,
        convertedBy: artifacts.convertedBy ?? null,
        modelTopology: artifacts.modelTopology,
        weightsManifest: [{ paths: [WEIGHTS], weights: artifacts.weightSpecs ?? [] }],
      };
      await fs.writeFile(path.join(dir, WEIGHTS), new Uint8Array(data));
      await fs.writeFile(path.join(dir, TOPOLOGY), JSON.stringify(json));
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    }),
  );
}

interface ModelJson {
  modelTopology: object;
  weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[];
}

/** Reads a layers model written by saveLayersModel. */
export async function loadLayersModel(dir: string): Promise<tf.LayersModel> {
  let json: ModelJson;
  let weights: Buffer;
  try {
    json = JSON.parse(await fs.readFile(path.join(dir, TOPOLOGY), 'utf8')) as ModelJson;
    weights = await fs.readFile(path.join(dir, WEIGHTS));
  } catch (e) {
    throw fail('MODEL_NOT_FOUND', `cannot read the model in '${dir}' (${messageOf(e)}); train one with \`latentdex train\``, e);
  }
  const specs = json.weightsManifest.flatMap((g) => g.weights);
  const data = weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength) as ArrayBuffer;
  return tf.loadLayersModel(tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs: specs, weightData: data }));
}

/** Replaces `dir` by `tmpDir` in one rename, so a reader never sees a half-written directory. */
export async function swapDir(tmpDir: string, dir: string): Promise<void> {
  const old = `${dir}.old-${process.pid}-${Date.now()}`;
  let hadOld = false;
  try {
    await fs.rename(dir, old);
    hadOld = true;
  } catch {
    // no previous directory
  }
  await fs.rename(tmpDir, dir);
  if (hadOld) await fs.rm(old, { recursive: true, force: true });
}
