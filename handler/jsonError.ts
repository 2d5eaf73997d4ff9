/**
 * Where a JSON text is broken, without quoting it. V8's messages quote the text around the error
 * (`Unexpected token 's', "{"pass": s"... is not valid JSON`), and the texts kvvm parses (settings files,
 * protected settings, templates) may hold secrets, so only the position and the kind of error are reported.
 */

/** "at character 7 (line 1, column 8): unexpected character", or "(the text ends too early)". */
export function describeJsonError(text: string): string {
  const offset = errorOffset(text);
  if (offset === undefined) return '(invalid JSON)';
  if (offset >= text.length) return `at character ${text.length}: the text ends too early (a missing "}", "]" or quote)`;
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  const column = offset - before.lastIndexOf('\n');
  return `at character ${offset} (line ${line}, column ${column}): unexpected character`;
}

/**
 * The offset of the first character JSON.parse rejects. Every prefix that ends before it fails only with
 * "Unexpected end" (or parses), every prefix that includes it fails otherwise, so a binary search over prefix
 * lengths finds it in log2(n) parses. Undefined when the text parses.
 */
function errorOffset(text: string): number | undefined {
  if (parseFailure(text) === undefined) return undefined;
  if (parseFailure(text) === 'end') return text.length;
  let lo = 0; // prefix of length lo fails with 'end' or parses
  let hi = text.length; // prefix of length hi fails otherwise
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (parseFailure(text.slice(0, mid)) === 'other') hi = mid;
    else lo = mid;
  }
  return hi - 1;
}

function parseFailure(text: string): 'end' | 'other' | undefined {
  try {
    JSON.parse(text);
    return undefined;
  } catch (err) {
    const message = err instanceof Error ? err.message : '';
    // "Expected ',' or '}' after property value in JSON at position 7" on a 7-character text is also an end.
    const position = /at position (\d+)/.exec(message)?.[1];
    const atEnd = position !== undefined && Number(position) >= text.length;
    return atEnd || /Unexpected end of JSON input|Unterminated string/.test(message) || text.trim() === '' ? 'end' : 'other';
  }
}
