/** What a card number (PAN) is replaced with. */
export const REDACTED_PAN = '[REDACTED_PAN]';

/** What a bearer token or JWT is replaced with. */
export const REDACTED_TOKEN = '[REDACTED_TOKEN]';

// A run of at least 13 digits, each optionally preceded by up to two spaces or dashes
// ("4111 1111-1111 1111"), standing on its own: not glued to a letter or digit on either side, so
// digits inside hex ids (trace ids, hashes, UUIDs) are not mistaken for card numbers.
const digitRunPattern = /(?<![A-Za-z0-9])\d(?:[ -]{0,2}\d){12,}(?![A-Za-z0-9])/g;
const digitRunProbe = /\d(?:[ -]{0,2}\d){12}/;
const digitGroupPattern = /\d+/g;

// RFC 6750 §2.1 b64token after the scheme name; at least 8 characters, so prose such as
// "the bearer of" is left alone.
const bearerPattern = /\b(bearer)\s+[A-Za-z0-9\-._~+/]{8,}=*/gi;
const bearerProbe = /\bbearer\s/i;
// A JWS/JWE compact serialization: base64url(JSON header) "." base64url(JSON payload) "." ...
const jwtPattern = /(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g;

// A JSON string literal, escapes included.
const jsonStringPattern = /"(?:[^"\\]|\\.)*"/g;

/** Whether a string of digits passes the Luhn (mod 10) check that every card number passes. */
export function isLuhnValid(digits: string): boolean {
  let sum = 0;
  let isDoubled = false;
  for (let index = digits.length - 1; index >= 0; index -= 1) {
    let digit = digits.charCodeAt(index) - 48;
    if (digit < 0 || digit > 9) return false;
    if (isDoubled) {
      digit *= 2;
      if (digit > 9) digit -= 9;
    }
    sum += digit;
    isDoubled = !isDoubled;
  }
  return digits.length > 0 && sum % 10 === 0;
}

interface DigitGroup {
  readonly start: number;
  readonly end: number;
  readonly digits: string;
}

// A run may hold a card number next to other numbers ("qty 2 4111 1111 1111 1111"), so every
// contiguous sequence of digit groups with 13–19 digits is a candidate; the longest valid one
// starting at each group wins. A single group is never split: "12345678901234567890" is one number.
function redactPansInRun(run: string): string {
  const groups: DigitGroup[] = [];
  for (const match of run.matchAll(digitGroupPattern)) {
    groups.push({ start: match.index, end: match.index + match[0].length, digits: match[0] });
  }
  let output = '';
  let copiedUpTo = 0;
  let first = 0;
  while (first < groups.length) {
    let digits = '';
    let found = -1;
    for (let last = first; last < groups.length; last += 1) {
      digits += groups[last]?.digits ?? '';
      if (digits.length > 19) break;
      if (digits.length >= 13 && isLuhnValid(digits)) found = last;
    }
    const start = groups[first]?.start ?? 0;
    const end = groups[found]?.end;
    if (end === undefined) {
      first += 1;
    } else {
      output += run.slice(copiedUpTo, start) + REDACTED_PAN;
      copiedUpTo = end;
      first = found + 1;
    }
  }
  return copiedUpTo === 0 ? run : output + run.slice(copiedUpTo);
}

/**
 * Replaces card numbers and bearer tokens in free text: every Luhn-valid run of 13–19 digits
 * (optionally grouped with spaces or dashes, not glued to a letter or digit) becomes `[REDACTED_PAN]`, `Bearer <token>` becomes
 * `Bearer [REDACTED_TOKEN]`, and JWT-looking strings become `[REDACTED_TOKEN]`. Other numbers
 * (amounts, timestamps, ids that fail Luhn) are kept. Returns `text` itself when nothing matched.
 */
export function scrubSensitiveText(text: string): string {
  let scrubbed = text;
  if (digitRunProbe.test(scrubbed)) {
    scrubbed = scrubbed.replace(digitRunPattern, redactPansInRun);
  }
  if (scrubbed.includes('eyJ')) {
    scrubbed = scrubbed.replace(jwtPattern, REDACTED_TOKEN);
  }
  if (bearerProbe.test(scrubbed)) {
    scrubbed = scrubbed.replace(bearerPattern, `$1 ${REDACTED_TOKEN}`);
  }
  return scrubbed;
}

/** Whether `text` may hold something {@link scrubSensitiveText} replaces; a cheap pre-check. */
export function mayHoldSensitiveText(text: string): boolean {
  return digitRunProbe.test(text) || text.includes('eyJ') || bearerProbe.test(text);
}

function scrubJsonStringLiteral(literal: string): string {
  if (!mayHoldSensitiveText(literal)) return literal;
  // Decode first: escapes such as \n would otherwise glue a letter to a card number.
  const text = JSON.parse(literal) as string;
  const scrubbed = scrubSensitiveText(text);
  return scrubbed === text ? literal : JSON.stringify(scrubbed);
}

/**
 * Applies {@link scrubSensitiveText} to the string values of one serialized JSON log line (and its
 * keys), leaving numbers and structure alone. Lines with no long digit run, no `eyJ` and no
 * `bearer` (nearly all of them) are returned untouched after one cheap scan.
 */
export function scrubJsonLine(line: string): string {
  if (!mayHoldSensitiveText(line)) return line;
  return line.replace(jsonStringPattern, scrubJsonStringLiteral);
}
