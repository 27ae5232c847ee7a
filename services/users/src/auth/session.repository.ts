import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { Role } from '../accounts/user';
import { inTransaction } from '../database';
import type { RefreshRefusal } from '../errors';
import { refreshDecision, type RefreshTokenState } from './refresh-token';

/** A refresh token to store: its hash and when it stops working. */
export interface NewRefreshToken {
  readonly hash: Buffer;
  readonly expiresAt: Date;
}

/** The account a rotated refresh token belongs to, as the new access token needs it. */
export interface SessionOwner {
  readonly userId: string;
  readonly role: Role;
}

export type RotationResult =
  | { readonly outcome: 'rotated'; readonly owner: SessionOwner }
  | { readonly outcome: RefreshRefusal };

export interface SessionRepository {
  /** Starts a family (a login) with its first refresh token. */
  start(userId: string, token: NewRefreshToken): Promise<void>;
  /**
   * Marks the presented token used and stores its successor in the same family, in one
   * transaction. A token that was used before revokes its family (reuse detection).
   */
  rotate(presented: Buffer, next: NewRefreshToken, now: Date): Promise<RotationResult>;
  /** Revokes the family of the presented token; false when the token is unknown. */
  revokeFamilyOf(presented: Buffer, now: Date): Promise<boolean>;
}

interface TokenRow {
  family_id: string;
  expires_at: Date;
  used_at: Date | null;
  family_revoked_at: Date | null;
  user_id: string;
  role: Role;
}

async function insertToken(
  client: pg.PoolClient,
  familyId: string,
  token: NewRefreshToken,
): Promise<void> {
  await client.query(
    'INSERT INTO refresh_tokens (token_hash, family_id, expires_at) VALUES ($1, $2, $3)',
    [token.hash, familyId, token.expiresAt],
  );
}

export function createSessionRepository(pool: pg.Pool): SessionRepository {
  return {
    start: (userId, token) =>
      inTransaction(pool, async (client) => {
        const familyId = randomUUID();
        await client.query('INSERT INTO refresh_token_families (id, user_id) VALUES ($1, $2)', [
          familyId,
          userId,
        ]);
        await insertToken(client, familyId, token);
      }),

    rotate: (presented, next, now) =>
      inTransaction(pool, async (client): Promise<RotationResult> => {
        // Locking the token row serialises concurrent presentations of the same token: the
        // second one sees it used and is treated as reuse.
        const { rows } = await client.query<TokenRow>(
          `SELECT t.family_id, t.expires_at, t.used_at, f.revoked_at AS family_revoked_at,
                  u.id AS user_id, u.role
           FROM refresh_tokens t
           JOIN refresh_token_families f ON f.id = t.family_id
           JOIN users u ON u.id = f.user_id
           WHERE t.token_hash = $1
           FOR UPDATE OF t, f`,
          [presented],
        );
        const row = rows[0];
        const state: RefreshTokenState | undefined =
          row === undefined
            ? undefined
            : {
                expiresAt: row.expires_at,
                usedAt: row.used_at,
                familyRevokedAt: row.family_revoked_at,
              };
        const decision = refreshDecision(state, now);
        if (row === undefined || decision !== 'rotate') {
          if (row !== undefined && decision === 'reused') {
            await client.query(
              `UPDATE refresh_token_families SET revoked_at = $2, revoked_reason = 'reuse'
               WHERE id = $1 AND revoked_at IS NULL`,
              [row.family_id, now],
            );
          }
          return { outcome: decision === 'rotate' ? 'unknown' : decision };
        }
        await client.query('UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1', [
          presented,
          now,
        ]);
        await insertToken(client, row.family_id, next);
        return { outcome: 'rotated', owner: { userId: row.user_id, role: row.role } };
      }),

    async revokeFamilyOf(presented, now) {
      const { rowCount } = await pool.query(
        `UPDATE refresh_token_families f
         SET revoked_at = COALESCE(f.revoked_at, $2),
             revoked_reason = COALESCE(f.revoked_reason, 'logout')
         FROM refresh_tokens t
         WHERE t.token_hash = $1 AND f.id = t.family_id`,
        [presented, now],
      );
      return rowCount !== 0;
    },
  };
}
