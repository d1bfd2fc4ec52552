/** Every error code latentdex raises, with the HTTP status it maps to. */
export const ERROR_CODES = {
  INVALID_ARGUMENT: 400,
  INVALID_DIM: 400,
  INVALID_IMAGE: 400,
  IMAGE_TOO_LARGE: 400,
  UNSUPPORTED_IMAGE: 415,
  EMPTY_TEXT: 400,
  K_OUT_OF_RANGE: 400,
  BAD_SOURCE: 400,
  BAD_FILE: 400,
  NOT_FOUND: 404,
  COLLECTION_NOT_FOUND: 404,
  ITEM_NOT_FOUND: 404,
  MODEL_NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  DUPLICATE_KEY: 409,
  COLLECTION_EXISTS: 409,
  MANIFEST_MISMATCH: 409,
  COLLECTION_REPLACED: 409,
  STALE_CURSOR: 409,
  COLLECTION_BUSY: 503,
  COLLECTION_UNAVAILABLE: 503,
  CORRUPT_COLLECTION: 503,
  STORE_UNREACHABLE: 503,
  UNAUTHORIZED: 401,
  WRITES_DISABLED: 403,
  STORE_UNSAFE: 403,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA: 415,
  TOO_MANY_REQUESTS: 429,
  MISDIRECTED: 421,
  REQUEST_TIMEOUT: 408,
  NOT_SUPPORTED: 501,
  BACKEND_UNAVAILABLE: 500,
  INTERNAL: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** The one error type of latentdex: a string `code` from ERROR_CODES and a message that says what to do next. */
export class LatentdexError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LatentdexError';
    this.code = code;
  }
  get status(): number {
    return ERROR_CODES[this.code];
  }
}

/** Creates a LatentdexError; the single factory every module uses. */
export function fail(code: ErrorCode, message: string, cause?: unknown): LatentdexError {
  return new LatentdexError(code, message, cause === undefined ? undefined : { cause });
}

export function isLatentdexError(e: unknown): e is LatentdexError {
  return e instanceof LatentdexError;
}

/** Best-effort message of an unknown thrown value. */
export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** The message of `e` without the leading name of the file it is about (for lists that name the file already). */
export function messageWithout(e: unknown, name: string): string {
  const m = messageOf(e);
  for (const head of [`${name}: `, `${name} `]) if (m.startsWith(head)) return m.slice(head.length);
  return m;
}
