import { describe, expect, it } from 'vitest';
import { parseReplayArgs } from './replay.command';

describe('parseReplayArgs', () => {
  it('rebuilds without options, imports or exports a file with one', () => {
    expect(parseReplayArgs([])).toEqual({ kind: 'rebuild' });
    expect(parseReplayArgs(['--input', 'a.ndjson'])).toEqual({ kind: 'input', file: 'a.ndjson' });
    expect(parseReplayArgs(['--export', 'b.ndjson'])).toEqual({ kind: 'export', file: 'b.ndjson' });
  });

  it('refuses anything else', () => {
    expect(parseReplayArgs(['--input'])).toBeUndefined();
    expect(parseReplayArgs(['--input', '--export'])).toBeUndefined();
    expect(parseReplayArgs(['--delete', 'x'])).toBeUndefined();
    expect(parseReplayArgs(['--input', 'a', 'b'])).toBeUndefined();
  });
});
