/**
 * The one number syntax a user types, in the CLI's flags and the API's query strings alike: decimal, optionally
 * signed with `-`, with a fraction or exponent (`3`, `0.5`, `.5`, `1e3`). `Number()` alone would read '' and ' '
 * as 0 and '0x10' as 16.
 */
export const DECIMAL = /^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;

/** The number a string spells in DECIMAL syntax, else NaN. */
export function decimal(v: string): number {
  return DECIMAL.test(v) ? Number(v) : Number.NaN;
}
