/**
 * JSON with every object's keys sorted, at every depth: one text per value, whatever order its fields were given in
 * (JSON.stringify's key-list replacer would drop nested fields instead).
 */
export function stableJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v,
  );
}
