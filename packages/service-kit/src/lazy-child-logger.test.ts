import { createLogger } from '@bazaar/logging';
import { describe, expect, it, vi } from 'vitest';
import { lazyChildLoggerFactory } from './lazy-child-logger';

function setup(level: 'info' | 'warn') {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({
    service: 'lazy-test',
    level,
    destination: {
      write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>),
    },
  });
  const child = vi.spyOn(logger, 'child');
  const requestLogger = lazyChildLoggerFactory(logger, { request_id: 'req-1' }, {});
  return { lines, child, requestLogger };
}

describe('lazyChildLoggerFactory', () => {
  it('builds no child for a request that logs nothing at an enabled level', () => {
    const { lines, child, requestLogger } = setup('warn');
    requestLogger.info('below the level');
    requestLogger.debug({ detail: 1 }, 'below the level too');
    expect(requestLogger.level).toBe('warn');
    expect(child).not.toHaveBeenCalled();
    expect(lines).toEqual([]);
  });

  it('builds the child once, on the first line, and writes every line with its bindings', () => {
    const { lines, child, requestLogger } = setup('info');
    requestLogger.info({ step: 1 }, 'first');
    requestLogger.error('second');
    expect(child).toHaveBeenCalledTimes(1);
    requestLogger.child({ part: 'db' }).warn('third');
    expect(lines).toEqual([
      expect.objectContaining({ level: 'info', request_id: 'req-1', step: 1, msg: 'first' }),
      expect.objectContaining({ level: 'error', request_id: 'req-1', msg: 'second' }),
      expect.objectContaining({ level: 'warn', request_id: 'req-1', part: 'db', msg: 'third' }),
    ]);
  });
});
