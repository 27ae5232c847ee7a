import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '@bazaar/logging';
import {
  importJWK,
  SignJWT,
  type CryptoKey,
  type JWTHeaderParameters,
  type JWTPayload,
  type KeyObject,
} from 'jose';
import {
  decryptPrivateJwk,
  deriveWrappingKey,
  encryptPrivateJwk,
  generateSigningKey,
  retireAfterOf,
  SIGNING_ALGORITHM,
  type PublicJwk,
} from './signing-key';
import type { NewKey, SigningKeyRepository, StoredKey } from './signing-key.repository';

type Key = CryptoKey | KeyObject;

/** The outcome of a rotation. */
export interface Rotation {
  readonly kid: string;
  readonly previousKid: string | null;
  /** When the previous key leaves the JWKS. */
  readonly previousRetireAfter: Date | null;
}

/**
 * This instance's view of the signing keys: the active key (private half decrypted in memory only)
 * and every published public key. Reloaded from PostgreSQL periodically, and at once when a token
 * names a `kid` it does not know (another instance may have rotated).
 */
export interface KeyRing {
  /** Creates the first key if the database has none, loads the keys and starts reloading them. */
  start(): Promise<void>;
  stop(): void;
  /** Signs a JWT with the active key (`alg` ES256, `kid`, and `typ` when given). */
  sign(payload: JWTPayload, typ?: string): Promise<string>;
  /** The public key a token's header names, for `jwtVerify`; rejects unknown or retired ones. */
  verificationKey(header: JWTHeaderParameters): Promise<Key>;
  /** The JWK Set to publish now. */
  jwks(): { keys: PublicJwk[] };
  /** Generates a new active key; the previous one stays published until its tokens expire. */
  rotate(): Promise<Rotation>;
  /** The kid of the key that signs now. */
  activeKid(): string;
}

export interface KeyRingOptions {
  readonly repository: SigningKeyRepository;
  readonly keyEncryptionKey: string;
  /** The longest lifetime of any token signed (access or service token). */
  readonly longestTokenLifetimeMs: number;
  readonly clockToleranceMs: number;
  readonly reloadIntervalMs: number;
  readonly logger: Logger;
  readonly now?: () => Date;
}

interface PublishedKey {
  readonly jwk: PublicJwk;
  readonly key: Key;
  readonly retireAfter: Date | null;
}

interface ActiveKey {
  readonly kid: string;
  readonly privateKey: Key;
}

// Unknown kids trigger reloads at most this often, so forged kids cannot hammer PostgreSQL; a token
// arriving sooner waits for the next reload instead of being refused.
const UNKNOWN_KID_RELOAD_INTERVAL_MS = 1_000;

export class UnknownSigningKeyError extends Error {
  override readonly name = 'UnknownSigningKeyError';
}

export function createKeyRing(options: KeyRingOptions): KeyRing {
  const { repository, logger, now = () => new Date() } = options;
  const wrappingKey = deriveWrappingKey(options.keyEncryptionKey);
  // A key superseded on another instance may still sign here until this instance reloads, so the
  // overlap covers one reload interval too.
  const overlapMs = options.longestTokenLifetimeMs + options.reloadIntervalMs;
  let published = new Map<string, PublishedKey>();
  let active: ActiveKey | undefined;
  let reloading: Promise<void> | undefined;
  let forcedReload: Promise<void> | undefined;
  let lastForcedReloadAt = 0;
  let timer: NodeJS.Timeout | undefined;

  async function sealedNewKey(): Promise<NewKey> {
    const generated = await generateSigningKey();
    return {
      kid: generated.kid,
      algorithm: generated.algorithm,
      publicJwk: generated.publicJwk,
      privateJwkCiphertext: encryptPrivateJwk(generated.privateJwk, generated.kid, wrappingKey),
    };
  }

  async function toPublished(stored: StoredKey): Promise<PublishedKey> {
    return {
      jwk: stored.publicJwk,
      key: (await importJWK(stored.publicJwk, stored.algorithm)) as Key,
      retireAfter: stored.retireAfter,
    };
  }

  async function load(): Promise<void> {
    const [activeRow, publishedRows] = await Promise.all([
      repository.findActive(),
      repository.listPublished(now()),
    ]);
    if (activeRow?.privateJwkCiphertext == null) {
      throw new Error('no active signing key with a private half in the database');
    }
    const privateJwk = decryptPrivateJwk(
      activeRow.privateJwkCiphertext,
      activeRow.kid,
      wrappingKey,
    );
    const next = new Map<string, PublishedKey>();
    for (const row of publishedRows) next.set(row.kid, await toPublished(row));
    active = {
      kid: activeRow.kid,
      privateKey: (await importJWK(privateJwk, activeRow.algorithm)) as Key,
    };
    published = next;
  }

  function reload(): Promise<void> {
    reloading ??= load().finally(() => {
      reloading = undefined;
    });
    return reloading;
  }

  /** A reload for a token naming an unknown kid: shared by concurrent callers, rate-limited. */
  function reloadForUnknownKid(): Promise<void> {
    forcedReload ??= (async () => {
      const waitMs = lastForcedReloadAt + UNKNOWN_KID_RELOAD_INTERVAL_MS - Date.now();
      if (waitMs > 0) await sleep(waitMs);
      lastForcedReloadAt = Date.now();
      await reload();
    })().finally(() => {
      forcedReload = undefined;
    });
    return forcedReload;
  }

  function isPublishedNow(key: PublishedKey): boolean {
    return key.retireAfter === null || key.retireAfter.getTime() > now().getTime();
  }

  return {
    async start() {
      if ((await repository.findActive()) === undefined) {
        const first = await sealedNewKey();
        if (await repository.insertIfNoneActive(first, now())) {
          logger.info({ kid: first.kid }, 'generated the first signing key');
        }
      }
      await reload();
      timer = setInterval(() => {
        reload().catch((error: unknown) =>
          logger.warn({ err: error }, 'could not reload signing keys; keeping the current ones'),
        );
      }, options.reloadIntervalMs);
      timer.unref();
    },

    stop() {
      clearInterval(timer);
    },

    async sign(payload, typ) {
      if (active === undefined) throw new Error('the key ring is not started');
      return new SignJWT(payload)
        .setProtectedHeader({
          alg: SIGNING_ALGORITHM,
          kid: active.kid,
          ...(typ === undefined ? {} : { typ }),
        })
        .sign(active.privateKey);
    },

    async verificationKey(header) {
      const { kid } = header;
      if (typeof kid !== 'string') throw new UnknownSigningKeyError('the token has no kid');
      let key = published.get(kid);
      if (key === undefined) {
        await reloadForUnknownKid();
        key = published.get(kid);
      }
      if (key === undefined || !isPublishedNow(key)) {
        throw new UnknownSigningKeyError(`no published signing key ${kid}`);
      }
      return key.key;
    },

    jwks() {
      return { keys: [...published.values()].filter(isPublishedNow).map((key) => key.jwk) };
    },

    async rotate() {
      const next = await sealedNewKey();
      const at = now();
      const retireAfter = retireAfterOf(at, overlapMs, options.clockToleranceMs);
      const previous = await repository.rotate(next, at, retireAfter);
      await reload();
      logger.info(
        { kid: next.kid, previousKid: previous?.kid, previousRetireAfter: retireAfter },
        'rotated the signing key',
      );
      return {
        kid: next.kid,
        previousKid: previous?.kid ?? null,
        previousRetireAfter: previous === undefined ? null : retireAfter,
      };
    },

    activeKid() {
      if (active === undefined) throw new Error('the key ring is not started');
      return active.kid;
    },
  };
}
