import { readdirSync } from 'node:fs';
import path from 'node:path';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const root = import.meta.dirname;
// Every `@bazaar/*` name that is not a shared package (or the stack) is a service.
const sharedNames = [
  'stack',
  ...readdirSync(path.join(root, 'packages'), { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name),
];

/** The service a repository-relative path belongs to, if any. */
function serviceOf(/** @type {string} */ relativePath) {
  const parts = relativePath.split(path.sep);
  return parts[0] === 'services' ? parts[1] : undefined;
}

/**
 * Services talk only through contracts: a service never imports another service,
 * and shared packages never import a service (STYLE.md, "Share infrastructure, never domain").
 * @type {import('eslint').Rule.RuleModule}
 */
export const boundaries = {
  meta: {
    type: 'problem',
    messages: {
      crossService:
        "'{{from}}' must not import service '{{to}}': talk to it through its HTTP or event contract.",
      packageToService: "Shared package code must not import service '{{to}}'.",
    },
    schema: [],
  },
  create(context) {
    const file = path.relative(root, context.filename);
    const own = serviceOf(file);
    const isPackage = file.startsWith(`packages${path.sep}`) || file.startsWith(`stack${path.sep}`);
    /** @param {import('estree').Node & { source?: import('estree').Literal | null }} node */
    function check(node) {
      const source = node.source?.value;
      if (typeof source !== 'string') return;
      let target;
      if (source.startsWith('.')) {
        target = serviceOf(
          path.relative(root, path.resolve(path.dirname(context.filename), source)),
        );
      } else if (source.startsWith('@bazaar/')) {
        const name = source.slice('@bazaar/'.length).split('/')[0] ?? '';
        target = sharedNames.includes(name) ? undefined : name;
      }
      if (target === undefined || target === own) return;
      if (own !== undefined) {
        context.report({ node, messageId: 'crossService', data: { from: own, to: target } });
      } else if (isPackage) {
        context.report({ node, messageId: 'packageToService', data: { to: target } });
      }
    }
    return {
      ImportDeclaration: check,
      ExportNamedDeclaration: check,
      ExportAllDeclaration: check,
      ImportExpression: check,
    };
  },
};

export default tseslint.config(
  { ignores: ['**/node_modules/**', '**/dist/**', '.bazaar/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: root },
    },
    plugins: { bazaar: { rules: { boundaries } } },
    rules: {
      'bazaar/boundaries': 'error',
      // Configuration is read from the environment in exactly one place per unit: config.ts.
      'no-restricted-properties': [
        'error',
        {
          object: 'process',
          property: 'env',
          message: 'Read the environment only in config.ts (STYLE.md, Config).',
        },
      ],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-floating-promises': 'error',
      'no-console': 'error',
    },
  },
  {
    files: ['**/config.ts'],
    rules: { 'no-restricted-properties': 'off' },
  },
  {
    // Command-line entry points talk to a terminal.
    files: [
      'stack/src/cli.ts',
      'stack/src/k8s/cli.ts',
      'stack/src/k8s/forward.ts',
      'stack/bin/**',
      '**/*.bench.ts',
      '**/bench/**',
      // The cluster suite reports request counts and failures in its output (issue 15).
      'deploy/k8s/test/cluster/**',
    ],
    rules: { 'no-console': 'off' },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      ...tseslint.configs.disableTypeChecked.languageOptions,
      globals: { process: 'readonly', console: 'readonly', URL: 'readonly' },
    },
  },
);
