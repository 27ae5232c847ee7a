export {
  errorCatalog,
  isErrorCode,
  problemTypeOf,
  statusOf,
  PROBLEM_TYPE_BASE,
  type ErrorCatalogEntry,
  type ErrorCode,
} from './catalog';
export {
  AppError,
  isAppError,
  type AppErrorOptions,
  type ErrorDetails,
  type FieldIssue,
} from './app-error';
export {
  toProblem,
  INTERNAL_ERROR_DETAIL,
  PROBLEM_CONTENT_TYPE,
  type ProblemContext,
  type ProblemDetails,
} from './problem';
