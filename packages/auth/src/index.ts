/**
 * Access-token verification for Bazaar's services (the users service issues the tokens).
 * See README.md.
 */
export {
  createAccessTokenVerifier,
  type Principal,
  type VerifierOptions,
  type VerifyAccessToken,
} from './verifier';
export { bearerTokenOf, isAdmin, principalOf, requireRole, requireUser } from './hooks';
export { VerifiedTokenCache, type VerifiedTokenCacheOptions } from './verified-token-cache';
