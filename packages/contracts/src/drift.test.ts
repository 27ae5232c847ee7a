import { describe, expect, it } from 'vitest';
import { describeDrift, findDrift } from '../scripts/drift';

const generated = new Map([
  ['event-types.ts', 'export type A = 1;\nexport type B = 2;\n'],
  ['validators.js', 'export const v = 1;\n'],
]);

describe('findDrift', () => {
  it('finds nothing when the committed files are what the generator writes', () => {
    expect(findDrift(generated, new Map(generated))).toEqual([]);
  });

  it('catches a hand-edited generated file and points at the first changed line', () => {
    const committed = new Map(generated);
    committed.set('event-types.ts', 'export type A = 1;\nexport type B = 3;\n');
    expect(findDrift(generated, committed)).toEqual([
      {
        file: 'event-types.ts',
        kind: 'changed',
        firstDifference: { line: 2, expected: 'export type B = 2;', actual: 'export type B = 3;' },
      },
    ]);
  });

  it('catches a truncated file, a missing file and a stale one', () => {
    const committed = new Map([
      ['event-types.ts', 'export type A = 1;\n'],
      ['old-event.ts', 'export {};\n'],
    ]);
    expect(findDrift(generated, committed)).toEqual([
      {
        file: 'event-types.ts',
        kind: 'changed',
        firstDifference: { line: 2, expected: 'export type B = 2;', actual: '' },
      },
      { file: 'old-event.ts', kind: 'unexpected' },
      { file: 'validators.js', kind: 'missing' },
    ]);
  });

  it('notices a change in trailing whitespace', () => {
    const committed = new Map(generated);
    committed.set('validators.js', 'export const v = 1;');
    expect(findDrift(generated, committed).map((drift) => drift.file)).toEqual(['validators.js']);
  });
});

describe('describeDrift', () => {
  it('names every drifted file and says how to fix it', () => {
    const committed = new Map([['event-types.ts', 'export type A = 0;\n']]);
    const report = describeDrift(
      findDrift(generated, committed),
      'packages/contracts/src/generated',
    );
    expect(report).toContain('2 generated file(s) in packages/contracts/src/generated');
    expect(report).toContain('event-types.ts: differs from line 1');
    expect(report).toContain('- export type A = 0;');
    expect(report).toContain('+ export type A = 1;');
    expect(report).toContain('validators.js: missing');
    expect(report).toContain('npm run contracts:generate');
  });
});
