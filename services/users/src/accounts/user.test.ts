import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  newUserId,
  normaliseEmail,
  normaliseName,
  passwordProblem,
  USER_ID_PATTERN,
  validateRegistration,
} from './user';

describe('normaliseEmail', () => {
  it.each([
    ['  Ada@Example.COM ', 'ada@example.com'],
    ['first.last+tag@sub.example.org', 'first.last+tag@sub.example.org'],
    ['ada@Bücher.example', 'ada@xn--bcher-kva.example'],
    ['ada@xn--bcher-kva.example', 'ada@xn--bcher-kva.example'],
  ])('%j → %j', (raw, expected) => {
    expect(normaliseEmail(raw)).toBe(expected);
  });

  it.each([
    'plainaddress',
    '@example.com',
    'ada@',
    'ada@localhost',
    'ada@@example.com',
    'a..b@example.com',
    '.ada@example.com',
    'ada@-example.com',
    'ada@example..com',
    '"quoted"@example.com',
    'ada lovelace@example.com',
    `${'a'.repeat(65)}@example.com`,
    `ada@${'a'.repeat(250)}.com`,
  ])('refuses %j', (raw) => {
    expect(normaliseEmail(raw)).toBeUndefined();
  });

  it('is idempotent: a normalised address normalises to itself', () => {
    fc.assert(
      fc.property(fc.emailAddress(), (raw) => {
        const once = normaliseEmail(raw);
        if (once !== undefined) expect(normaliseEmail(once)).toBe(once);
      }),
    );
  });

  it('maps addresses differing only in case and surrounding spaces to one account', () => {
    fc.assert(
      fc.property(fc.emailAddress(), fc.boolean(), (raw, upper) => {
        const variant = ` ${upper ? raw.toUpperCase() : raw} `;
        expect(normaliseEmail(variant)).toBe(normaliseEmail(raw));
      }),
    );
  });
});

describe('passwordProblem', () => {
  it('accepts a long, uncommon password', () => {
    expect(passwordProblem('correct horse battery staple', 'ada@example.com')).toBeUndefined();
  });

  it('counts characters, not bytes', () => {
    expect(passwordProblem('ünïcödé-pässwörd', undefined)).toBeUndefined();
    expect(passwordProblem('🔒🔒🔒🔒🔒🔒🔒🔒🔒🔒🔒', undefined)).toBe(
      'must be at least 12 characters (got 11)',
    );
  });

  it.each([
    ['short', 'must be at least 12 characters (got 5)'],
    ['x'.repeat(129), 'must be at most 128 characters'],
    [' '.repeat(12), 'must not be only spaces'],
    ['Password1234', 'is too common; choose a less predictable password'],
    ['aaaaaaaaaaaaaaa', 'is too common; choose a less predictable password'],
    ['ada@example.com', 'must not be the email address'],
    ['ADA@example.com', 'must not be the email address'],
  ])('%j → %j', (password, problem) => {
    expect(passwordProblem(password, 'ada@example.com')).toBe(problem);
  });
});

describe('normaliseName', () => {
  it('trims', () => {
    expect(normaliseName('  Ada Lovelace ')).toEqual({ name: 'Ada Lovelace' });
  });

  it.each([
    ['', 'must not be empty'],
    ['   ', 'must not be empty'],
    ['x'.repeat(201), 'must be at most 200 characters'],
    ['Ada\nLovelace', 'must not contain control characters'],
    ['Ada\u0000', 'must not contain control characters'],
  ])('%j → %j', (raw, problem) => {
    expect(normaliseName(raw)).toEqual({ problem });
  });
});

describe('validateRegistration', () => {
  it('lists every problem at once, in field order', () => {
    expect(validateRegistration({ email: 'nope', password: 'short', name: '' })).toEqual({
      issues: [
        { path: '/body/email', message: 'must be a valid email address' },
        { path: '/body/password', message: 'must be at least 12 characters (got 5)' },
        { path: '/body/name', message: 'must not be empty' },
      ],
    });
  });

  it('returns the normalised registration', () => {
    expect(
      validateRegistration({
        email: ' Ada@Example.com',
        password: 'correct horse battery staple',
        name: ' Ada ',
      }),
    ).toEqual({
      registration: {
        email: 'ada@example.com',
        password: 'correct horse battery staple',
        name: 'Ada',
      },
    });
  });
});

describe('newUserId', () => {
  it('is usr_ and 26 Crockford base32 characters, matching the contract pattern', () => {
    const id = newUserId();
    expect(id).toMatch(/^usr_[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(id).toMatch(USER_ID_PATTERN);
  });

  it('sorts by creation time', () => {
    const earlier = newUserId(new Date('2025-01-01T00:00:00Z'));
    const later = newUserId(new Date('2025-01-01T00:00:01Z'));
    expect(earlier < later).toBe(true);
  });

  it('does not repeat', () => {
    const ids = new Set(Array.from({ length: 1000 }, () => newUserId(new Date(0))));
    expect(ids.size).toBe(1000);
  });
});
