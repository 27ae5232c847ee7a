import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  isLuhnValid,
  REDACTED_PAN,
  REDACTED_TOKEN,
  scrubJsonLine,
  scrubSensitiveText,
} from './sensitive-text';

// An independent reference: the check digit that makes `body` + digit pass Luhn.
function luhnCheckDigit(body: string): number {
  const sum = [...body]
    .reverse()
    .map(Number)
    .reduce((total, digit, index) => {
      if (index % 2 !== 0) return total + digit;
      const doubled = digit * 2;
      return total + (doubled > 9 ? doubled - 9 : doubled);
    }, 0);
  return (10 - (sum % 10)) % 10;
}

const panDigits = fc
  .integer({ min: 13, max: 19 })
  .chain((length) =>
    fc.array(fc.integer({ min: 0, max: 9 }), { minLength: length - 1, maxLength: length - 1 }),
  )
  .map((body) => body.join(''))
  .map((body) => `${body}${luhnCheckDigit(body)}`);

// A card number as people write it: digits, optionally grouped by spaces or dashes.
const formattedPan = panDigits.chain((digits) =>
  fc
    .array(fc.constantFrom('', '', '', '', ' ', '-', '  ', ' -'), {
      minLength: digits.length - 1,
      maxLength: digits.length - 1,
    })
    .map((separators) => ({
      digits,
      text: [...digits]
        .map((digit, index) => (index === 0 ? digit : `${separators[index - 1] ?? ''}${digit}`))
        .join(''),
    })),
);

const anyText = fc.oneof(
  fc.string(),
  fc.string({ unit: 'binary' }),
  fc.string({ unit: 'grapheme' }),
);
const prefixText = anyText.filter((text) => !/[A-Za-z0-9]$/.test(text));
const suffixText = anyText.filter((text) => !/^[A-Za-z0-9]/.test(text));

/** Every run of digits and separators in `text`, separators removed. */
function digitRunsOf(text: string): string[] {
  return (text.match(/\d(?:[ -]*\d)*/g) ?? []).map((run) => run.replace(/[ -]/g, ''));
}

describe('isLuhnValid', () => {
  it('accepts real test card numbers and refuses altered ones', () => {
    for (const pan of [
      '4111111111111111',
      '5555555555554444',
      '378282246310005',
      '6011111111111117',
    ]) {
      expect(isLuhnValid(pan), pan).toBe(true);
    }
    for (const pan of ['4111111111111112', '5555555555554443', '378282246310006', '']) {
      expect(isLuhnValid(pan), pan).toBe(false);
    }
    expect(isLuhnValid('4111-1111')).toBe(false);
  });

  it('agrees with the reference check digit', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^\d{1,25}$/), (body) => {
        const check = luhnCheckDigit(body);
        expect(isLuhnValid(`${body}${check}`)).toBe(true);
        expect(isLuhnValid(`${body}${(check + 1) % 10}`)).toBe(false);
      }),
    );
  });
});

describe('scrubSensitiveText', () => {
  it('replaces card numbers written in the usual ways', () => {
    expect(scrubSensitiveText('card 4111111111111111 ok')).toBe(`card ${REDACTED_PAN} ok`);
    expect(scrubSensitiveText('pan=4111 1111 1111 1111.')).toBe(`pan=${REDACTED_PAN}.`);
    expect(scrubSensitiveText('"3782-822463-10005"')).toBe(`"${REDACTED_PAN}"`);
    expect(scrubSensitiveText('qty 2 4111 1111 1111 1111')).toBe(`qty 2 ${REDACTED_PAN}`);
    expect(scrubSensitiveText('a 4111111111111111, b 5555555555554444')).toBe(
      `a ${REDACTED_PAN}, b ${REDACTED_PAN}`,
    );
  });

  it('keeps numbers that are not card numbers', () => {
    const text =
      'order ord_123 total 129999 at 2026-11-24T20:33:05.123Z, epoch 1732476000, ' +
      'ms 1732476000001, ref 4111111111111112, id 12345678901234567890123';
    expect(isLuhnValid('1732476000001')).toBe(false);
    expect(scrubSensitiveText(text)).toBe(text);
  });

  it('leaves digits inside hex ids alone', () => {
    const traceId = '4111111111111111abcdef0123456789';
    expect(scrubSensitiveText(`trace ${traceId}`)).toBe(`trace ${traceId}`);
  });

  it('replaces bearer tokens and JWTs', () => {
    const jwt = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c3JfMSJ9.c2lnbmF0dXJlLWJ5dGVzLWhlcmU-_';
    expect(scrubSensitiveText(`Authorization: Bearer abc.def-ghi_123~+/==`)).toBe(
      `Authorization: Bearer ${REDACTED_TOKEN}`,
    );
    expect(scrubSensitiveText(`token=${jwt}&x=1`)).toBe(`token=${REDACTED_TOKEN}&x=1`);
    expect(scrubSensitiveText(`bearer ${jwt}`)).toBe(`bearer ${REDACTED_TOKEN}`);
    expect(scrubSensitiveText('the bearer of the card')).toBe('the bearer of the card');
  });

  it('returns the same string when nothing matches', () => {
    const text = 'nothing to see 12345';
    expect(scrubSensitiveText(text)).toBe(text);
  });

  it('never outputs a Luhn-valid 13–19 digit number standing in text', () => {
    fc.assert(
      fc.property(prefixText, formattedPan, suffixText, (prefix, pan, suffix) => {
        const output = scrubSensitiveText(`${prefix}${pan.text}${suffix}`);
        expect(output).toContain(REDACTED_PAN);
        for (const run of digitRunsOf(output)) expect(run).not.toContain(pan.digits);
      }),
      { numRuns: 500 },
    );
  });

  it('keeps ordinary numbers: amounts, timestamps, short ids, Luhn-invalid long numbers', () => {
    const amount = fc.integer({ min: 0, max: 99_999_999 }).map(String);
    const price = fc
      .tuple(fc.integer({ min: 0, max: 999_999 }), fc.integer({ min: 0, max: 99 }))
      .map(([units, cents]) => `${units}.${String(cents).padStart(2, '0')}`);
    const isoTime = fc
      .date({ min: new Date(0), max: new Date('2100-01-01'), noInvalidDate: true })
      .map((date) => date.toISOString());
    const epochSeconds = fc.integer({ min: 1_000_000_000, max: 4_102_444_800 }).map(String);
    const longInvalid = fc
      .stringMatching(/^[1-9]\d{12,18}$/)
      .filter((digits) => !isLuhnValid(digits));
    const prefixedId = fc
      .tuple(fc.constantFrom('ord_', 'usr_', 'pay_'), fc.integer({ min: 0, max: 999_999_999 }))
      .map(([prefix, n]) => `${prefix}${n}`);
    const hexId = fc.stringMatching(/^[0-9a-f]{16,32}$/).filter((id) => /[a-f]/.test(id));
    const word = fc.constantFrom('order', 'total', 'at', 'qty', 'USD', 'ok');
    const token = fc.oneof(
      amount,
      price,
      isoTime,
      epochSeconds,
      longInvalid,
      prefixedId,
      hexId,
      word,
    );
    const joiner = fc.constantFrom(', ', ' and ', '; ', ': ', ' = ', ' / ');
    fc.assert(
      fc.property(fc.array(fc.tuple(token, joiner), { maxLength: 12 }), (parts) => {
        const text = parts.map(([part, join]) => part + join).join('');
        expect(scrubSensitiveText(text)).toBe(text);
      }),
      { numRuns: 500 },
    );
  });

  it('is idempotent', () => {
    fc.assert(
      fc.property(prefixText, formattedPan, suffixText, (prefix, pan, suffix) => {
        const once = scrubSensitiveText(`${prefix}${pan.text}${suffix}`);
        expect(scrubSensitiveText(once)).toBe(once);
      }),
    );
  });
});

describe('scrubJsonLine', () => {
  it('scrubs string values and keeps numbers and structure', () => {
    const line = JSON.stringify({
      msg: 'paid with 4111111111111111',
      amount: 4111111111111111,
      nested: { note: 'line one\n5555555555554444', list: ['Bearer abcdefgh12345678'] },
    });
    expect(JSON.parse(scrubJsonLine(line))).toEqual({
      msg: `paid with ${REDACTED_PAN}`,
      amount: 4111111111111111,
      nested: { note: `line one\n${REDACTED_PAN}`, list: [`Bearer ${REDACTED_TOKEN}`] },
    });
  });

  it('returns the very same line when nothing may be sensitive', () => {
    const line = '{"level":"info","time":"2026-11-24T20:33:05.123Z","msg":"ok","n":12}\n';
    expect(scrubJsonLine(line)).toBe(line);
  });

  it('keeps any JSON line valid', () => {
    fc.assert(
      fc.property(fc.jsonValue(), prefixText, formattedPan, (value, prefix, pan) => {
        const line = JSON.stringify({ value, text: `${prefix}${pan.text}` });
        const scrubbed = JSON.parse(scrubJsonLine(line)) as { text: string };
        expect(scrubbed.text).toContain(REDACTED_PAN);
      }),
    );
  });
});
