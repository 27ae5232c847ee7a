import { createHash, timingSafeEqual } from 'node:crypto';
import { normaliseEmail, type User } from '../accounts/user';
import type { UserService } from '../accounts/user.service';
import {
  audienceNotAllowed,
  invalidClientCredentials,
  invalidCredentials,
  invalidRefreshToken,
  tooManyLoginFailures,
} from '../errors';
import type { AccessTokens, IssuedToken } from './access-tokens';
import type { LoginThrottle } from './login-throttle';
import { hashRefreshToken, isWellFormedRefreshToken, newRefreshToken } from './refresh-token';
import type { SessionRepository } from './session.repository';

/** What login and refresh answer (ARCHITECTURE.md). */
export interface TokenPair {
  readonly accessToken: string;
  readonly refreshToken: string;
  readonly tokenType: 'Bearer';
  readonly expiresIn: number;
}

/** A service allowed to obtain client-credentials tokens. */
export interface ServiceClient {
  readonly id: string;
  readonly secret: string;
  readonly audiences: readonly string[];
}

export interface AuthService {
  login(email: string, password: string, clientAddress: string): Promise<TokenPair>;
  /** Rotates a refresh token; reuse of a rotated one revokes its family. */
  refresh(refreshToken: string): Promise<TokenPair>;
  /** Revokes the family of a refresh token; silent when the token is unknown. */
  logout(refreshToken: string): Promise<void>;
  issueServiceToken(clientId: string, clientSecret: string, audience: string): Promise<IssuedToken>;
}

export interface AuthServiceDeps {
  readonly users: Pick<UserService, 'verifyCredentials'>;
  readonly sessions: SessionRepository;
  readonly tokens: AccessTokens;
  readonly throttle: LoginThrottle;
  readonly refreshTokenTtlMs: number;
  readonly serviceClients: readonly ServiceClient[];
  readonly now?: () => Date;
}

const digest = (value: string) => createHash('sha256').update(value, 'utf8').digest();

export function createAuthService(deps: AuthServiceDeps): AuthService {
  const { users, sessions, tokens, throttle, now = () => new Date() } = deps;
  // Compared as digests, in constant time, so neither length nor content leaks through timing.
  const clients = new Map(
    deps.serviceClients.map((client) => [
      client.id,
      { digest: digest(client.secret), audiences: client.audiences },
    ]),
  );
  const decoySecretDigest = digest('no client has this secret');

  const nextRefreshToken = () => {
    const token = newRefreshToken();
    const expiresAt = new Date(now().getTime() + deps.refreshTokenTtlMs);
    return { token, stored: { hash: hashRefreshToken(token), expiresAt } };
  };

  async function pairFor(
    user: Pick<User, 'id' | 'role'>,
    refreshToken: string,
  ): Promise<TokenPair> {
    const access = await tokens.issueForUser(user);
    return {
      accessToken: access.token,
      refreshToken,
      tokenType: 'Bearer',
      expiresIn: access.expiresInSeconds,
    };
  }

  return {
    async login(email, password, clientAddress) {
      const account = normaliseEmail(email) ?? email.trim().toLowerCase();
      const retryAfterSeconds = await throttle.admit(account, clientAddress);
      if (retryAfterSeconds !== undefined) throw tooManyLoginFailures(retryAfterSeconds);
      const user = await users.verifyCredentials(email, password);
      if (user === undefined) throw invalidCredentials();
      await throttle.reset(account, clientAddress);
      const refresh = nextRefreshToken();
      await sessions.start(user.id, refresh.stored);
      return pairFor(user, refresh.token);
    },

    async refresh(refreshToken) {
      if (!isWellFormedRefreshToken(refreshToken)) throw invalidRefreshToken('unknown');
      const next = nextRefreshToken();
      const result = await sessions.rotate(hashRefreshToken(refreshToken), next.stored, now());
      if (result.outcome !== 'rotated') throw invalidRefreshToken(result.outcome);
      return pairFor({ id: result.owner.userId, role: result.owner.role }, next.token);
    },

    async logout(refreshToken) {
      if (!isWellFormedRefreshToken(refreshToken)) return;
      await sessions.revokeFamilyOf(hashRefreshToken(refreshToken), now());
    },

    async issueServiceToken(clientId, clientSecret, audience) {
      const client = clients.get(clientId);
      const presented = digest(clientSecret);
      const isSecretRight = timingSafeEqual(presented, client?.digest ?? decoySecretDigest);
      if (client === undefined || !isSecretRight) throw invalidClientCredentials();
      if (!client.audiences.includes(audience)) throw audienceNotAllowed(audience);
      return tokens.issueForService(clientId, audience);
    },
  };
}
