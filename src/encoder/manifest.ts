import { z } from 'zod';
import { INPUT_SCALES } from './input-scale.js';
import { WEIGHTINGS } from './vectorizer.js';

export const MODEL_FORMAT = 'latentdex-model';
export const MODEL_FORMAT_VERSION = 1;

const denseArch = z.object({
  arch: z.literal('dense'),
  inputDim: z.number().int().positive(),
  hidden: z.array(z.number().int().positive()),
  codeDim: z.number().int().positive(),
  activation: z.enum(['relu', 'elu', 'sigmoid', 'tanh']),
});
const convArch = z.object({
  arch: z.literal('conv'),
  width: z.number().int().positive(),
  height: z.number().int().positive(),
  channels: z.number().int().positive(),
  filters: z.array(z.number().int().positive()),
  codeDim: z.number().int().positive(),
});

export const regularisersSchema = z.object({
  /** masking: zero a fraction of inputs (Vincent 2008); dropout: the same, survivors scaled by 1/(1-level); gaussian: add noise */
  denoise: z.object({ kind: z.enum(['masking', 'dropout', 'gaussian']), level: z.number().min(0).max(1) }).optional(),
  sparse: z.number().min(0).optional(),
  /** shift corruption: the input is moved by up to `pixels` in x and y, the target is the unmoved image */
  shift: z.object({ pixels: z.number().int().min(1), width: z.number().int(), height: z.number().int(), channels: z.number().int() }).optional(),
  contractive: z.number().min(0).optional(),
  /** semantic hashing: code bits, trained as a sigmoid layer with noise injected before it */
  binaryBits: z.number().int().positive().optional(),
  binaryNoise: z.number().min(0).optional(),
  /**
   * how codes become bits: noise (sigmoid units driven to 0/1 by noise in training, cut at 0.5; Salakhutdinov &
   * Hinton) or median (a plain float code, each unit cut at its median over the training items)
   */
  binarize: z.enum(['noise', 'median']).optional(),
  /** the per-unit cut points of a median-binarized code, fitted after training */
  binaryThresholds: z.array(z.number()).optional(),
});
export type Regularisers = z.infer<typeof regularisersSchema>;

export const modelManifestSchema = z.object({
  format: z.literal(MODEL_FORMAT),
  version: z.literal(MODEL_FORMAT_VERSION),
  kind: z.enum(['image', 'text']),
  architecture: z.discriminatedUnion('arch', [denseArch, convArch]),
  /** how raw input becomes the network's input */
  input: z.discriminatedUnion('type', [
    z.object({
      type: z.literal('pixels'),
      width: z.number().int().positive(),
      height: z.number().int().positive(),
      channels: z.number().int().positive(),
      /** see INPUT_SCALES */
      scale: z.enum(INPUT_SCALES),
      /** a standardised model's mean image mean and standard deviation: how a code with no image of its own is shown */
      typical: z.object({ mean: z.number(), sd: z.number().positive() }).optional(),
      /** how another aspect ratio became this shape (absent: stretched, as before the option existed) */
      fit: z.enum(['cover', 'contain', 'fill']).optional(),
      /** the colour alpha is composited on (absent: black) */
      background: z.string().regex(/^#[0-9a-fA-F]{6}$/).optional(),
      /** how the pixels were resampled (absent: libvips lanczos3, as before the option existed) */
      resample: z.enum(['lanczos3', 'area']).optional(),
    }),
    z.object({ type: z.literal('bow'), vocabSize: z.number().int(), weighting: z.enum(WEIGHTINGS) }),
  ]),
  inputDim: z.number().int().positive(),
  codeDim: z.number().int().positive(),
  output: z.enum(['sigmoid', 'softmax', 'linear']),
  /** mse: squared error of the sigmoid output; linear-mse: of the linear output (standardised input) */
  loss: z.enum(['bce', 'mse', 'linear-mse', 'softmax-ce']),
  regularisers: regularisersSchema,
  source: z.string(),
  training: z.object({
    epochs: z.number().int(),
    bestEpoch: z.number().int(),
    trainLoss: z.number(),
    heldOutLoss: z.number(),
    samplesPerSec: z.number(),
    seconds: z.number(),
    seed: z.number().int(),
    batchSize: z.number().int(),
    trainItems: z.number().int(),
    heldOutItems: z.number().int(),
    backend: z.string(),
    threads: z.number().int().positive().optional(),
  }),
  createdAt: z.string(),
})
  .superRefine((m, ctx) => {
    // an image model's input scale, output and loss go together (fit.ts): a manifest edited into another
    // combination would have items encoded from the wrong input and shown with the wrong output
    if (m.input.type !== 'pixels') return;
    const standardised = m.input.scale === 'standardised';
    const issue = (path: (string | number)[], message: string) => ctx.addIssue({ code: z.ZodIssueCode.custom, path, message });
    if (standardised && m.input.typical === undefined) issue(['input', 'typical'], 'a standardised input needs its typical brightness { mean, sd }');
    if (standardised && (m.output !== 'linear' || m.loss !== 'linear-mse')) issue(['output'], `a standardised input goes with output 'linear' and loss 'linear-mse', not '${m.output}' and '${m.loss}'`);
    if (!standardised && (m.output !== 'sigmoid' || (m.loss !== 'bce' && m.loss !== 'mse'))) issue(['output'], `a 0-1 input goes with output 'sigmoid' and loss 'bce' or 'mse', not '${m.output}' and '${m.loss}'`);
  });

export type ModelManifest = z.infer<typeof modelManifestSchema>;
export type ArchConfig = ModelManifest['architecture'];
