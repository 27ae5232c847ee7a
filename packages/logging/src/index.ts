export { createLogger, type Logger, type LoggerOptions } from './logger';
export { REDACTED, redactSecretKeys, secretKeys, SECRET_KEY_DEPTH } from './redaction';
export {
  isLuhnValid,
  REDACTED_PAN,
  REDACTED_TOKEN,
  mayHoldSensitiveText,
  scrubJsonLine,
  scrubSensitiveText,
} from './sensitive-text';
export { createElasticsearchShipper } from './elasticsearch-shipper';
export type {
  ElasticsearchShipper,
  ElasticsearchShipperOptions,
  ShipperStats,
} from './elasticsearch-shipper';
