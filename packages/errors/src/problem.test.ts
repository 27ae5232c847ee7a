import { describe, expect, it } from 'vitest';
import { AppError } from './app-error';
import { INTERNAL_ERROR_DETAIL, toProblem } from './problem';

describe('toProblem', () => {
  it('renders an AppError as RFC 9457 problem details with Bazaar extensions', () => {
    const error = new AppError('NOT_FOUND', 'Order ord_1 does not exist');
    expect(toProblem(error, { instance: '/v1/orders/ord_1', traceId: 'abc123' })).toStrictEqual({
      type: 'https://bazaar.dev/problems/not-found',
      title: 'Resource not found',
      status: 404,
      detail: 'Order ord_1 does not exist',
      instance: '/v1/orders/ord_1',
      code: 'NOT_FOUND',
      traceId: 'abc123',
    });
  });

  it('omits instance and traceId when unknown', () => {
    const problem = toProblem(new AppError('CONFLICT'));
    expect(Object.keys(problem).sort()).toEqual(['code', 'detail', 'status', 'title', 'type']);
  });

  it('lists the field issues of a validation failure', () => {
    const errors = [
      { path: '/body/amount', message: 'must be > 0' },
      { path: '/body/currency', message: 'must be 3 letters' },
    ];
    const problem = toProblem(
      new AppError('VALIDATION_FAILED', 'The request is invalid', { details: { errors } }),
    );
    expect(problem.status).toBe(400);
    expect(problem.code).toBe('VALIDATION_FAILED');
    expect(problem.errors).toEqual(errors);
  });

  it('does not let details override the members that carry meaning', () => {
    const problem = toProblem(
      new AppError('FORBIDDEN', 'No', {
        details: { status: 200, code: 'INTERNAL', type: 'x', extra: 1 },
      }),
    );
    expect(problem).toMatchObject({ status: 403, code: 'FORBIDDEN', extra: 1 });
    expect(problem.type).toBe('https://bazaar.dev/problems/forbidden');
  });

  it('turns an unexpected error into INTERNAL without leaking its message or stack', () => {
    const error = new Error('password=hunter2 at db.internal:5432');
    const problem = toProblem(error, { traceId: 't1' });
    expect(problem).toStrictEqual({
      type: 'https://bazaar.dev/problems/internal',
      title: 'Internal error',
      status: 500,
      detail: INTERNAL_ERROR_DETAIL,
      code: 'INTERNAL',
      traceId: 't1',
    });
    expect(JSON.stringify(problem)).not.toContain('hunter2');
  });

  it('turns thrown non-errors into INTERNAL too', () => {
    for (const thrown of ['boom', 42, null, undefined, { code: 'NOT_FOUND', status: 404 }]) {
      expect(toProblem(thrown).code).toBe('INTERNAL');
    }
  });

  it('never exposes the cause of an AppError', () => {
    const problem = toProblem(
      new AppError('UPSTREAM_FAILED', 'The card processor failed', {
        cause: new Error('secret upstream detail'),
      }),
    );
    expect(JSON.stringify(problem)).not.toContain('secret upstream detail');
    expect(problem.status).toBe(502);
  });
});
