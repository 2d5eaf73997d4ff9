/**
 * "Did you mean" for settings keys. Operators type keys by hand from docs that disagree with each other
 * (the Linux page says "certStoreLocation", people write "pollingIntervalInSeconds"), so a near miss deserves
 * the right spelling rather than a bare "unknown key".
 */

/** Misspellings seen in docs and templates that edit distance alone would not catch. */
const KNOWN_ALIASES: Readonly<Record<string, string>> = {
  certstorelocation: 'certificateStoreLocation',
  certstorename: 'certificateStoreName',
  storelocation: 'certificateStoreLocation',
  storename: 'certificateStoreName',
  pollinginterval: 'pollingIntervalInS',
  pollingintervalinseconds: 'pollingIntervalInS',
  pollingintervalsec: 'pollingIntervalInS',
  symboliclinkname: 'customSymbolicLinkName',
  symlinkname: 'customSymbolicLinkName',
  msiclientid: 'msiClientId',
  clientid: 'clientId',
  certificateurl: 'url',
  uri: 'url',
  exportable: 'keyExportable',
  owner: 'user',
};

/** Optimal string alignment distance (Levenshtein plus adjacent transpositions). */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[][] = Array.from({ length: rows }, (_, i) => Array.from({ length: cols }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  const at = (i: number, j: number): number => d[i]?.[j] ?? Number.POSITIVE_INFINITY;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, at(i - 2, j - 2) + 1);
      const row = d[i];
      if (row) row[j] = v;
    }
  }
  return at(a.length, b.length);
}

/**
 * The allowed key `unknown` was most likely meant to be, or undefined. Case-insensitive; accepts a known alias,
 * a small edit distance (about one typo per four characters), or a prefix relation of at least 6 characters
 * ("pollingInterval" → "pollingIntervalInS", "observedCertificatesList" → "observedCertificates").
 */
export function suggestKey(unknown: string, allowed: readonly string[]): string | undefined {
  const u = unknown.toLowerCase();
  const letters = u.replace(/[^a-z]/g, '');
  const alias = Object.hasOwn(KNOWN_ALIASES, letters) ? KNOWN_ALIASES[letters] : undefined;
  if (alias !== undefined && allowed.includes(alias)) return alias;
  let best: { key: string; score: number } | undefined;
  for (const key of allowed) {
    const k = key.toLowerCase();
    const dist = editDistance(u, k);
    const limit = Math.max(1, Math.floor(Math.max(k.length, 4) / 4));
    const prefix = Math.min(u.length, k.length) >= 6 && (u.startsWith(k) || k.startsWith(u));
    if (dist <= limit || prefix) {
      const score = prefix && dist > limit ? limit + 0.5 : dist;
      if (!best || score < best.score) best = { key, score };
    }
  }
  return best?.key;
}
