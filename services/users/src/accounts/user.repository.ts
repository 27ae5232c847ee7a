import type pg from 'pg';
import type { Queryable } from '../database';
import type { Role, User } from './user';

/** A new account as stored. */
export interface NewUser {
  readonly id: string;
  readonly email: string;
  readonly name: string;
  readonly passwordHash: string;
  readonly role: Role;
  readonly emailVerified: boolean;
  readonly createdAt: Date;
}

/** The only place that knows the `users` table. */
export interface UserRepository {
  /** Inserts with `client` (inside the caller's transaction); `email_taken` on a duplicate email. */
  insert(client: Queryable, user: NewUser): Promise<User | 'email_taken'>;
  findById(id: string): Promise<User | undefined>;
  findByEmail(email: string): Promise<User | undefined>;
  updateName(id: string, name: string, now: Date): Promise<User | undefined>;
  /** Replaces the hash only if it is still `previousHash` (a concurrent change wins). */
  replacePasswordHash(id: string, previousHash: string, nextHash: string): Promise<void>;
  /** Makes an existing account an admin with this password hash (the local admin). */
  promoteToAdmin(id: string, passwordHash: string, now: Date): Promise<User | undefined>;
}

interface UserRow {
  id: string;
  email: string;
  name: string;
  password_hash: string;
  role: Role;
  email_verified: boolean;
  version: string;
  created_at: Date;
  updated_at: Date;
}

const COLUMNS =
  'id, email, name, password_hash, role, email_verified, version, created_at, updated_at';

function toUser(row: UserRow): User {
  return {
    id: row.id,
    email: row.email,
    name: row.name,
    passwordHash: row.password_hash,
    role: row.role,
    emailVerified: row.email_verified,
    version: Number(row.version),
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

const UNIQUE_VIOLATION = '23505';

function isDuplicateEmail(error: unknown): boolean {
  const { code, constraint } = error as { code?: unknown; constraint?: unknown };
  return code === UNIQUE_VIOLATION && constraint === 'users_email_key';
}

export function createUserRepository(pool: pg.Pool): UserRepository {
  async function one(text: string, values: unknown[]): Promise<User | undefined> {
    const { rows } = await pool.query<UserRow>(text, values);
    return rows[0] === undefined ? undefined : toUser(rows[0]);
  }

  return {
    async insert(client, user) {
      try {
        const { rows } = await client.query<UserRow>(
          `INSERT INTO users (id, email, name, password_hash, role, email_verified, created_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
           RETURNING ${COLUMNS}`,
          [
            user.id,
            user.email,
            user.name,
            user.passwordHash,
            user.role,
            user.emailVerified,
            user.createdAt,
          ],
        );
        const [row] = rows;
        if (row === undefined) throw new Error('INSERT … RETURNING returned no row');
        return toUser(row);
      } catch (error) {
        if (isDuplicateEmail(error)) return 'email_taken';
        throw error;
      }
    },

    findById: (id) => one(`SELECT ${COLUMNS} FROM users WHERE id = $1`, [id]),

    findByEmail: (email) => one(`SELECT ${COLUMNS} FROM users WHERE email = $1`, [email]),

    updateName: (id, name, now) =>
      one(
        `UPDATE users SET name = $2, version = version + 1, updated_at = $3
         WHERE id = $1 RETURNING ${COLUMNS}`,
        [id, name, now],
      ),

    async replacePasswordHash(id, previousHash, nextHash) {
      await pool.query(`UPDATE users SET password_hash = $3 WHERE id = $1 AND password_hash = $2`, [
        id,
        previousHash,
        nextHash,
      ]);
    },

    promoteToAdmin: (id, passwordHash, now) =>
      one(
        `UPDATE users SET role = 'admin', password_hash = $2, email_verified = true,
                          version = version + 1, updated_at = $3
         WHERE id = $1 RETURNING ${COLUMNS}`,
        [id, passwordHash, now],
      ),
  };
}
