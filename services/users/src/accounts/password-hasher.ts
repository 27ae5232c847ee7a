import { hash, parseOptions, verify, type Algorithm } from '@node-rs/argon2';

/** Argon2id cost parameters (RFC 9106 §4; OWASP's minimum is m = 19 MiB, t = 2, p = 1). */
export interface Argon2Parameters {
  readonly memoryKiB: number;
  readonly timeCost: number;
  readonly parallelism: number;
}

/** Hashes and checks passwords; tells when a stored hash was made with other parameters. */
export interface PasswordHasher {
  hash(password: string): Promise<string>;
  verify(storedHash: string, password: string): Promise<boolean>;
  /** Whether `storedHash` should be replaced by a hash with the current parameters. */
  needsRehash(storedHash: string): boolean;
}

// `Algorithm` is an ambient const enum, which isolated modules cannot read; 2 is Argon2id.
const ARGON2ID = 2 as Algorithm;

/** An Argon2id {@link PasswordHasher} (PHC string format, 16-byte random salt, 32-byte output). */
export function createPasswordHasher(parameters: Argon2Parameters): PasswordHasher {
  const options = {
    algorithm: ARGON2ID,
    memoryCost: parameters.memoryKiB,
    timeCost: parameters.timeCost,
    parallelism: parameters.parallelism,
  };
  return {
    hash: (password) => hash(password.normalize('NFC'), options),
    async verify(storedHash, password) {
      try {
        return await verify(storedHash, password.normalize('NFC'));
      } catch {
        // A malformed stored hash cannot match anything.
        return false;
      }
    },
    needsRehash(storedHash) {
      try {
        const current = parseOptions(storedHash);
        return (
          current.algorithm !== ARGON2ID ||
          current.memoryCost !== parameters.memoryKiB ||
          current.timeCost !== parameters.timeCost ||
          current.parallelism !== parameters.parallelism
        );
      } catch {
        return true;
      }
    },
  };
}
