import * as tf from '@tensorflow/tfjs';
import type { AutoencoderParts } from './dense.js';

/** Convolutional autoencoder: stride-2 convolutions down (28→14→7), a dense code, transposed convolutions up. */
export interface ConvConfig {
  arch: 'conv';
  width: number;
  height: number;
  channels: number;
  filters: number[];
  codeDim: number;
}

export const CONV_DEFAULTS: Omit<ConvConfig, 'width' | 'height' | 'channels'> = {
  arch: 'conv',
  filters: [32, 64],
  codeDim: 32,
};

/** Training settings for conv models: small batches (6 epochs at batch 256 left P@10 at 0.64, at 64: 0.91). */
export const CONV_TRAINING = { batchSize: 64, epochs: 10 };

export function buildConv(config: ConvConfig, seed = 1): AutoencoderParts {
  const { width, height, channels, filters } = config;
  const f = 2 ** filters.length;
  // Pad up to a multiple of 2^levels so the stride-2 pyramid is exact, crop back at the end.
  const pw = Math.ceil(width / f) * f;
  const ph = Math.ceil(height / f) * f;
  let k = 0;
  const ki = () => tf.initializers.glorotUniform({ seed: seed + k++ });
  const encoder = tf.sequential({ name: 'encoder' });
  encoder.add(tf.layers.reshape({ targetShape: [height, width, channels], inputShape: [width * height * channels] }));
  if (pw !== width || ph !== height) {
    encoder.add(tf.layers.zeroPadding2d({ padding: [[0, ph - height], [0, pw - width]] }));
  }
  for (const nf of filters) {
    encoder.add(tf.layers.conv2d({ filters: nf, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu', kernelInitializer: ki() }));
  }
  encoder.add(tf.layers.flatten());
  encoder.add(tf.layers.dense({ units: config.codeDim, kernelInitializer: ki(), name: 'code' }));

  const sw = pw / f;
  const sh = ph / f;
  const top = filters[filters.length - 1]!;
  const decoder = tf.sequential({ name: 'decoder' });
  decoder.add(tf.layers.dense({ units: sw * sh * top, activation: 'relu', inputShape: [config.codeDim], kernelInitializer: ki() }));
  decoder.add(tf.layers.reshape({ targetShape: [sh, sw, top] }));
  const up = [...filters].reverse().slice(1);
  for (const nf of up) {
    decoder.add(tf.layers.conv2dTranspose({ filters: nf, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu', kernelInitializer: ki() }));
  }
  decoder.add(tf.layers.conv2dTranspose({ filters: channels, kernelSize: 3, strides: 2, padding: 'same', kernelInitializer: ki() }));
  if (pw !== width || ph !== height) {
    decoder.add(tf.layers.cropping2D({ cropping: [[0, ph - height], [0, pw - width]] }));
  }
  decoder.add(tf.layers.flatten({ name: 'logits' }));
  return { encoder, decoder };
}
