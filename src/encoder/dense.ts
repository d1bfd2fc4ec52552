import * as tf from '@tensorflow/tfjs';

/** Dense deep autoencoder, e.g. 784-1000-500-250-32 (Hinton & Salakhutdinov 2006 with a linear code). */
export interface DenseConfig {
  arch: 'dense';
  inputDim: number;
  /** hidden sizes of the encoder, mirrored by the decoder */
  hidden: number[];
  codeDim: number;
  activation: 'relu' | 'elu' | 'sigmoid' | 'tanh';
}

export const DENSE_DEFAULTS: Omit<DenseConfig, 'inputDim'> = {
  arch: 'dense',
  hidden: [1000, 500, 250],
  codeDim: 32,
  // ELU beat ReLU on both reconstruction and retrieval in our measurements (README, results).
  activation: 'elu',
};

export interface AutoencoderParts {
  /** input → pre-activation code (linear) */
  encoder: tf.LayersModel;
  /** code → output logits; the output activation (sigmoid or softmax) is applied by the caller */
  decoder: tf.LayersModel;
}

function init(seed: number, i: number): ReturnType<typeof tf.initializers.glorotUniform> {
  return tf.initializers.glorotUniform({ seed: seed + i });
}

export function buildDense(config: DenseConfig, seed = 1): AutoencoderParts {
  let k = 0;
  const encoder = tf.sequential({ name: 'encoder' });
  config.hidden.forEach((units, i) =>
    encoder.add(
      tf.layers.dense({
        units,
        activation: config.activation,
        kernelInitializer: init(seed, k++),
        ...(i === 0 ? { inputShape: [config.inputDim] } : {}),
      }),
    ),
  );
  encoder.add(tf.layers.dense({ units: config.codeDim, kernelInitializer: init(seed, k++), ...(config.hidden.length === 0 ? { inputShape: [config.inputDim] } : {}), name: 'code' }));
  const decoder = tf.sequential({ name: 'decoder' });
  const up = [...config.hidden].reverse();
  up.forEach((units, i) =>
    decoder.add(
      tf.layers.dense({ units, activation: config.activation, kernelInitializer: init(seed, k++), ...(i === 0 ? { inputShape: [config.codeDim] } : {}) }),
    ),
  );
  decoder.add(tf.layers.dense({ units: config.inputDim, kernelInitializer: init(seed, k++), ...(up.length === 0 ? { inputShape: [config.codeDim] } : {}), name: 'logits' }));
  return { encoder, decoder };
}
