// Composition root: config → logger → telemetry → discovery + redis → gateway → listen → drain.
import path from 'node:path';
import { createDnsDiscovery, createEtcdRegistry, registerInstance } from '@bazaar/registry';
import { bootstrapService, runService, type Closer } from '@bazaar/service-kit';
import { Redis } from 'ioredis';
import { buildGateway } from './app';
import { declarativeVars, readConfig } from './config';
import { loadDeclarative } from './declarative';

const service = 'gateway';

const { config, logger, telemetry } = bootstrapService(service, readConfig);

const closers: Closer[] = [];
try {
  const declarative = loadDeclarative(
    path.resolve(config.GATEWAY_CONFIG_FILE),
    declarativeVars(config),
  );
  const discovery =
    config.ETCD_URL === undefined
      ? createDnsDiscovery({
          portOf: () => config.GATEWAY_DNS_PORT,
          hostnameOf: (name) =>
            config.GATEWAY_DNS_DOMAIN === undefined ? name : `${name}.${config.GATEWAY_DNS_DOMAIN}`,
          onError: (error, name) => logger.warn({ err: error, service: name }, 'DNS lookup failed'),
        })
      : createEtcdRegistry({ url: config.ETCD_URL, logger });
  closers.push({ name: 'discovery', close: () => discovery.close() });
  const redis =
    config.REDIS_URL === undefined
      ? undefined
      : new Redis(config.REDIS_URL, {
          maxRetriesPerRequest: 1,
          enableOfflineQueue: false,
          // Per command: the rate limiter sends one command per event-loop turn for all the
          // checks made in it (rate-limit.plugin.ts), so this is one timer per turn.
          commandTimeout: 500,
        });
  if (redis !== undefined) {
    redis.on('error', (error) => logger.warn({ err: error }, 'redis error'));
    closers.push({ name: 'redis', close: () => void redis.disconnect() });
  }
  const gateway = await buildGateway({
    config: { ...config, GATEWAY_CONTRACTS_DIR: path.resolve(config.GATEWAY_CONTRACTS_DIR) },
    logger,
    telemetry,
    declarative,
    discovery,
    redis,
  });
  closers.push({ name: 'upstreams', close: () => gateway.close() });
  const running = await runService({
    app: gateway.app,
    config,
    logger,
    telemetry,
    onShutdown: closers,
  });
  closers.push(...(await registerInstance(service, config, running.port, logger)));
} catch (error) {
  logger.fatal({ err: error }, 'could not start');
  for (const closer of [...closers].reverse())
    await Promise.resolve(closer.close()).catch(() => undefined);
  await telemetry.shutdown();
  process.exit(1);
}
