import { describe, expect, it } from 'vitest';
import { createPasswordHasher } from './password-hasher';

const minimum = { memoryKiB: 19_456, timeCost: 2, parallelism: 1 };

describe('password hasher', () => {
  const hasher = createPasswordHasher(minimum);

  it('makes argon2id PHC strings with the configured cost and a random salt', async () => {
    const first = await hasher.hash('correct horse battery staple');
    const second = await hasher.hash('correct horse battery staple');
    expect(first).toMatch(
      /^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/,
    );
    expect(second).not.toBe(first);
  });

  it('verifies the right password only', async () => {
    const stored = await hasher.hash('correct horse battery staple');
    await expect(hasher.verify(stored, 'correct horse battery staple')).resolves.toBe(true);
    await expect(hasher.verify(stored, 'correct horse battery stapler')).resolves.toBe(false);
    await expect(hasher.verify('not a hash', 'anything')).resolves.toBe(false);
  });

  it('treats the NFC and NFD spellings of a password as the same password', async () => {
    const stored = await hasher.hash('crème brûlée recipe');
    await expect(hasher.verify(stored, 'crème brûlée recipe'.normalize('NFD'))).resolves.toBe(true);
  });

  it('asks for a rehash when any parameter differs from the current ones', async () => {
    const stored = await hasher.hash('correct horse battery staple');
    expect(hasher.needsRehash(stored)).toBe(false);
    expect(createPasswordHasher({ ...minimum, timeCost: 3 }).needsRehash(stored)).toBe(true);
    expect(createPasswordHasher({ ...minimum, memoryKiB: 65_536 }).needsRehash(stored)).toBe(true);
    expect(createPasswordHasher({ ...minimum, parallelism: 2 }).needsRehash(stored)).toBe(true);
    expect(hasher.needsRehash('$2b$10$abcdefghijklmnopqrstuu')).toBe(true);
  });
});
