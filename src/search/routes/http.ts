import type { StoreIndex, StoreWriter } from '../app.js';
import type { DemoBuild } from '../demo.js';
import type express from 'express';
import type { NextFunction, Request, Response } from 'express';
import type { z } from 'zod';
import { fail } from '../../errors.js';
import { sniffImage } from '../../../data/decode.js';
import type { SearchEngine } from '../engine.js';

/** What every router of the app is given: the engine, the app's options, and the shared middleware. */
export interface RouteContext {
  engine: SearchEngine;
  /** serve originals and full paths (see AppDeps.serveOriginals) */
  serveOriginals: boolean;
  backend: string | null;
  version: string | null;
  /** demo collections being built in the background */
  demo: { status(): DemoBuild[] } | null;
  /** a replica's writes go to its store (AppDeps.writer) */
  writer: StoreWriter | null;
  /** a replica's collections too large to copy, searched through the store's index (AppDeps.indexed) */
  indexed: StoreIndex | null;
  /** runs a handler as tracked engine work, errors to the error middleware */
  wrap: (h: Handler) => (req: Request, res: Response, next: NextFunction) => void;
  /** multipart upload of one image in field `image` */
  upload: express.RequestHandler;
  /** 403/401 unless writes are on and the API key is sent */
  requireKey: express.RequestHandler;
}

export type Handler = (req: Request, res: Response) => Promise<void> | void;

/** Validates a value from the client with a zod schema; INVALID_ARGUMENT naming the first problem. */
export function parse<T>(schema: z.ZodType<T, z.ZodTypeDef, unknown>, v: unknown, what: string): T {
  const r = schema.safeParse(v);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw fail('INVALID_ARGUMENT', `${what}: ${i.path.join('.') || 'value'} ${i.message.toLowerCase()}`);
  }
  return r.data;
}

/** The content type of a stored preview from its first bytes. */
export function previewType(b: Buffer): string {
  return sniffImage(b) === 'webp' ? 'image/webp' : 'image/png';
}

