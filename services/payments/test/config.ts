// The test suite's own environment, read in one place like a service's config.ts.

/** Debug logs of the in-process payments app when `PAYMENTS_TEST_LOG` is set. */
export const isTestLogEnabled = process.env.PAYMENTS_TEST_LOG !== undefined;

/** The PATH child processes (psp-sandbox, the payments bundle) inherit. */
export const childPath = process.env.PATH ?? '';
