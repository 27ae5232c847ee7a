import { describe, expect, it } from 'vitest';
import { vitestArgsFor } from './test-args';

describe('vitestArgsFor', () => {
  it('runs only the unit and integration projects by default, never the opt-in bigquery one', () => {
    expect(vitestArgsFor(['test'])).toEqual(['--project', 'unit', '--project', 'integration']);
    expect(vitestArgsFor(['test', '--keep', 'services/orders'])).toEqual([
      '--project',
      'unit',
      '--project',
      'integration',
      'services/orders',
    ]);
  });

  it('keeps the projects the caller names', () => {
    expect(vitestArgsFor(['--project', 'bigquery'])).toEqual(['--project', 'bigquery']);
    expect(vitestArgsFor(['--project=integration', '-t', 'saga'])).toEqual([
      '--project=integration',
      '-t',
      'saga',
    ]);
  });
});
