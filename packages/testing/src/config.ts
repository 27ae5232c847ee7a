import type { ProfileName } from '@bazaar/stack';

/**
 * Which stack profile tests and benchmarks talk to: `test` (the default; `npm test`) or `bench`
 * (`npm run bench` sets BAZAAR_PROFILE=bench for its suites).
 */
export function stackProfile(env: NodeJS.ProcessEnv = process.env): ProfileName {
  const profile = env.BAZAAR_PROFILE ?? 'test';
  if (profile !== 'test' && profile !== 'bench') {
    throw new Error(`tests run against the "test" or "bench" profile, not "${profile}"`);
  }
  return profile;
}
