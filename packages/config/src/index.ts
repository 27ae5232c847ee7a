export { loadConfig, type ConfigOf, type DeepReadonly, type EnvSource } from './config';
export { ConfigError, type ConfigProblem } from './config-error';
export {
  accessTokenEnv,
  bool,
  csv,
  durationMs,
  logLevel,
  logLevels,
  nodeEnv,
  nodeEnvs,
  parseDurationMs,
  port,
  positiveInt,
  serviceEnv,
  url,
  type LogLevel,
  type NodeEnv,
  type ServiceConfig,
  type UrlOptions,
} from './env-schemas';
export { builtInDefaults, secret, type SecretOptions } from './secret';
