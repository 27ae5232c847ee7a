import type pg from 'pg';
import { inTransaction } from '../database';
import type { PublicJwk } from './signing-key';

/** A signing key as stored: the private half only while the key signs, and only encrypted. */
export interface StoredKey {
  readonly kid: string;
  readonly algorithm: string;
  readonly publicJwk: PublicJwk;
  readonly privateJwkCiphertext: Buffer | null;
  readonly createdAt: Date;
  readonly supersededAt: Date | null;
  readonly retireAfter: Date | null;
}

/** A key to store: the public JWK and the sealed private JWK. */
export interface NewKey {
  readonly kid: string;
  readonly algorithm: string;
  readonly publicJwk: PublicJwk;
  readonly privateJwkCiphertext: Buffer;
}

export interface SigningKeyRepository {
  /** The key that signs now, if any. */
  findActive(): Promise<StoredKey | undefined>;
  /** Keys that verifiers may still need at `now`: the active one and those not yet retired. */
  listPublished(now: Date): Promise<StoredKey[]>;
  /** Stores `key` as the active key unless one exists (instances starting together agree). */
  insertIfNoneActive(key: NewKey, now: Date): Promise<boolean>;
  /**
   * Makes `key` the active key. The previous one stops signing at `now`, loses its private half
   * (it never signs again) and stays published until `retireAfter`.
   */
  rotate(key: NewKey, now: Date, retireAfter: Date): Promise<StoredKey | undefined>;
}

interface KeyRow {
  kid: string;
  algorithm: string;
  public_jwk: PublicJwk;
  private_jwk_ciphertext: Buffer | null;
  created_at: Date;
  superseded_at: Date | null;
  retire_after: Date | null;
}

function toKey(row: KeyRow): StoredKey {
  return {
    kid: row.kid,
    algorithm: row.algorithm,
    publicJwk: row.public_jwk,
    privateJwkCiphertext: row.private_jwk_ciphertext,
    createdAt: row.created_at,
    supersededAt: row.superseded_at,
    retireAfter: row.retire_after,
  };
}

const COLUMNS =
  'kid, algorithm, public_jwk, private_jwk_ciphertext, created_at, superseded_at, retire_after';

// Serialises key changes across instances (first start, rotations); any constant works.
const KEY_CHANGE_LOCK = "hashtext('users.signing_keys')";

async function insertKey(client: pg.PoolClient, key: NewKey, now: Date): Promise<void> {
  await client.query(
    `INSERT INTO signing_keys (kid, algorithm, public_jwk, private_jwk_ciphertext, created_at)
     VALUES ($1, $2, $3, $4, $5)`,
    [key.kid, key.algorithm, JSON.stringify(key.publicJwk), key.privateJwkCiphertext, now],
  );
}

export function createSigningKeyRepository(pool: pg.Pool): SigningKeyRepository {
  return {
    async findActive() {
      const { rows } = await pool.query<KeyRow>(
        `SELECT ${COLUMNS} FROM signing_keys WHERE superseded_at IS NULL`,
      );
      return rows[0] === undefined ? undefined : toKey(rows[0]);
    },

    async listPublished(now) {
      const { rows } = await pool.query<KeyRow>(
        `SELECT ${COLUMNS} FROM signing_keys
         WHERE superseded_at IS NULL OR retire_after > $1
         ORDER BY created_at DESC`,
        [now],
      );
      return rows.map(toKey);
    },

    insertIfNoneActive: (key, now) =>
      inTransaction(pool, async (client) => {
        await client.query(`SELECT pg_advisory_xact_lock(${KEY_CHANGE_LOCK})`);
        const { rowCount } = await client.query(
          'SELECT 1 FROM signing_keys WHERE superseded_at IS NULL',
        );
        if (rowCount !== 0) return false;
        await insertKey(client, key, now);
        return true;
      }),

    rotate: (key, now, retireAfter) =>
      inTransaction(pool, async (client) => {
        await client.query(`SELECT pg_advisory_xact_lock(${KEY_CHANGE_LOCK})`);
        const { rows } = await client.query<KeyRow>(
          `UPDATE signing_keys
           SET superseded_at = $1, retire_after = $2, private_jwk_ciphertext = NULL
           WHERE superseded_at IS NULL
           RETURNING ${COLUMNS}`,
          [now, retireAfter],
        );
        await insertKey(client, key, now);
        return rows[0] === undefined ? undefined : toKey(rows[0]);
      }),
  };
}
