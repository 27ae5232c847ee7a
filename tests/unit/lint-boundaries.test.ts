import path from 'node:path';
import { Linter } from 'eslint';
import tseslint from 'typescript-eslint';
import { describe, expect, it } from 'vitest';
import { boundaries } from '../../eslint.config.js';

const root = path.resolve(import.meta.dirname, '../..');
const linter = new Linter({ configType: 'flat' });

function lint(file: string, code: string): string[] {
  return linter
    .verify(
      code,
      [
        {
          files: ['**/*.ts'],
          languageOptions: { parser: tseslint.parser },
          plugins: { bazaar: { rules: { boundaries } } },
          rules: { 'bazaar/boundaries': 'error' },
        },
      ],
      { filename: path.join(root, file) },
    )
    .map((message) => message.message);
}

describe('the boundaries lint rule', () => {
  it('refuses a service importing another service, by package name or relative path', () => {
    expect(lint('services/psp-sandbox/src/x.ts', "import { a } from '@bazaar/orders';")).toEqual([
      expect.stringContaining("must not import service 'orders'"),
    ]);
    expect(
      lint('services/psp-sandbox/src/x.ts', "import { a } from '../../orders/src/app';"),
    ).toHaveLength(1);
    expect(
      lint('services/psp-sandbox/test/x.test.ts', "export * from '../../users/src/app';"),
    ).toHaveLength(1);
  });

  it('refuses a shared package importing a service', () => {
    expect(
      lint('packages/service-kit/src/x.ts', "import { a } from '@bazaar/psp-sandbox';"),
    ).toEqual([expect.stringContaining('Shared package code must not import')]);
  });

  it('allows a service its own files and the shared packages', () => {
    expect(lint('services/psp-sandbox/test/x.test.ts', "import { a } from '../src/app';")).toEqual(
      [],
    );
    expect(
      lint('services/psp-sandbox/src/x.ts', "import { a } from '@bazaar/service-kit';"),
    ).toEqual([]);
    expect(lint('services/psp-sandbox/src/x.ts', "import { z } from 'zod';")).toEqual([]);
  });
});
