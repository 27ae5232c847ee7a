import { randomBytes } from 'node:crypto';
import { domainToASCII } from 'node:url';
import type { FieldIssue } from '@bazaar/errors';

export const roles = ['customer', 'admin'] as const;
export type Role = (typeof roles)[number];

/** An account as the service keeps it (never sent as is: it holds the password hash). */
export interface User {
  readonly id: string;
  readonly email: string;
  readonly name: string;
  readonly passwordHash: string;
  readonly role: Role;
  readonly emailVerified: boolean;
  /** Incremented on every change. */
  readonly version: number;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

/** What a user may see of their own account, and what the cache holds. */
export interface Profile {
  readonly id: string;
  readonly email: string;
  readonly name: string;
  readonly role: Role;
  readonly emailVerified: boolean;
  readonly version: number;
  readonly createdAt: string;
  readonly updatedAt: string;
}

export function profileOf(user: User): Profile {
  return {
    id: user.id,
    email: user.email,
    name: user.name,
    role: user.role,
    emailVerified: user.emailVerified,
    version: user.version,
    createdAt: user.createdAt.toISOString(),
    updatedAt: user.updatedAt.toISOString(),
  };
}

const ID_ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/**
 * A new user id: `usr_` and 26 Crockford base32 characters, the first 10 from the time (so ids sort
 * roughly by creation, as ULIDs do) and 16 random (80 bits).
 */
export function newUserId(now: Date = new Date()): string {
  let time = now.getTime();
  let timePart = '';
  for (let index = 0; index < 10; index += 1) {
    timePart = ID_ALPHABET.charAt(time % 32) + timePart;
    time = Math.floor(time / 32);
  }
  const random = randomBytes(16);
  let randomPart = '';
  for (const byte of random) randomPart += ID_ALPHABET.charAt(byte % 32);
  return `usr_${timePart}${randomPart}`;
}

export const USER_ID_PATTERN = /^usr_[A-Za-z0-9_-]{1,64}$/;

export const EMAIL_MAX_LENGTH = 254;
const LOCAL_PART_MAX_LENGTH = 64;
// The local part in the dot-atom form of RFC 5322 (what real providers accept); quoted local parts
// are refused, as nearly every service does.
const localPartPattern = /^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*$/;
const domainLabelPattern = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/**
 * The canonical form of an email address, or `undefined` when it is not one: trimmed, Unicode NFC,
 * lower-cased (local parts are case-insensitive at every provider that matters), and the domain in
 * ASCII (IDNA), so `Ada@Bücher.example` and `ada@xn--bcher-kva.example` are the same account.
 */
export function normaliseEmail(raw: string): string | undefined {
  const email = raw.trim().normalize('NFC').toLowerCase();
  const at = email.lastIndexOf('@');
  if (at <= 0 || at === email.length - 1) return undefined;
  const localPart = email.slice(0, at);
  const domain = domainToASCII(email.slice(at + 1));
  if (localPart.length > LOCAL_PART_MAX_LENGTH || !localPartPattern.test(localPart)) {
    return undefined;
  }
  const labels = domain.split('.');
  if (labels.length < 2 || !labels.every((label) => domainLabelPattern.test(label))) {
    return undefined;
  }
  const normalised = `${localPart}@${domain}`;
  return normalised.length <= EMAIL_MAX_LENGTH ? normalised : undefined;
}

export const PASSWORD_MIN_LENGTH = 12;
export const PASSWORD_MAX_LENGTH = 128;

// The most common passwords of at least 12 characters in public breach corpora; a short list keeps
// the rule explainable. A deployment that wants more plugs in a breached-password check.
const commonPasswords = new Set([
  '123456789012',
  '1234567890123',
  '12345678901234',
  '123456123456',
  '111111111111',
  '000000000000',
  'qwertyuiop12',
  'qwertyuiopas',
  'qwerty123456',
  '1q2w3e4r5t6y',
  'password1234',
  'password12345',
  'passwordpassword',
  'iloveyou1234',
  'abcdefghijkl',
  'abc123abc123',
  'letmein12345',
  'welcome12345',
  'administrator',
  'adminadmin12',
  'changeme1234',
  'qazwsxedcrfv',
  '1qaz2wsx3edc',
  'zaq12wsxcde3',
  'trustno1trustno1',
]);

/**
 * What is wrong with a new password, as one message, or `undefined` when it is acceptable. The rule
 * follows NIST SP 800-63B §3.1.1.2: a length range (counted in characters, not bytes), no
 * composition rules, and no value that is known to be common or derived from the account.
 */
export function passwordProblem(password: string, email: string | undefined): string | undefined {
  const length = [...password.normalize('NFC')].length;
  if (length < PASSWORD_MIN_LENGTH) {
    return `must be at least ${PASSWORD_MIN_LENGTH} characters (got ${length})`;
  }
  if (length > PASSWORD_MAX_LENGTH) return `must be at most ${PASSWORD_MAX_LENGTH} characters`;
  if (password.trim() === '') return 'must not be only spaces';
  const lowered = password.toLowerCase();
  if (commonPasswords.has(lowered) || /^(.)\1+$/.test(password)) {
    return 'is too common; choose a less predictable password';
  }
  if (email !== undefined && (lowered === email || lowered === email.split('@')[0])) {
    return 'must not be the email address';
  }
  return undefined;
}

export const NAME_MAX_LENGTH = 200;

/** A display name without surrounding spaces, or the problem with it. */
export function normaliseName(raw: string): { name: string } | { problem: string } {
  const name = raw.trim().normalize('NFC');
  if (name === '') return { problem: 'must not be empty' };
  if ([...name].length > NAME_MAX_LENGTH) {
    return { problem: `must be at most ${NAME_MAX_LENGTH} characters` };
  }
  // Control characters break logs, mails and terminals; a name never needs them.
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(name)) {
    return { problem: 'must not contain control characters' };
  }
  return { name };
}

/** A registration that passed every rule, ready to be hashed and stored. */
export interface Registration {
  readonly email: string;
  readonly password: string;
  readonly name: string;
}

/** Checks every field of a registration at once; `issues` lists all problems. */
export function validateRegistration(input: {
  email: string;
  password: string;
  name: string;
}): { registration: Registration } | { issues: FieldIssue[] } {
  const issues: FieldIssue[] = [];
  const email = normaliseEmail(input.email);
  if (email === undefined) {
    issues.push({ path: '/body/email', message: 'must be a valid email address' });
  }
  const password = passwordProblem(input.password, email);
  if (password !== undefined) issues.push({ path: '/body/password', message: password });
  const name = normaliseName(input.name);
  if ('problem' in name) issues.push({ path: '/body/name', message: name.problem });
  if (issues.length > 0 || email === undefined || 'problem' in name) return { issues };
  return { registration: { email, password: input.password, name: name.name } };
}
