import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { componentSpecs, createContext } from './components';
import { readStackConfig } from './config';
import { runDir, socketPath } from './control';
import { loadOrCreateSecrets } from './secrets';
import { ensureServiceUser } from './service-user';
import { groupMemory } from './proc';
import { reapRecorded, Supervisor } from './supervisor';
import { locateTools, toolPathKey } from './tools';

/**
 * The supervisor daemon of one profile: owns every process of the local stack and answers the CLI
 * over a private unix socket (GET /status, POST /up, /scale, /down; progress streamed as NDJSON).
 */
async function main(argv: readonly string[]): Promise<void> {
  const profileIndex = argv.indexOf('--profile');
  const config = readStackConfig(profileIndex >= 0 ? argv[profileIndex + 1] : undefined);
  const run = runDir(config);
  mkdirSync(run, { recursive: true });
  const log = (event: string, fields: Record<string, unknown> = {}) =>
    process.stdout.write(
      `${JSON.stringify({ time: new Date().toISOString(), event, ...fields })}\n`,
    );

  const pidFile = path.join(run, 'children.json');
  for (const orphan of reapRecorded(pidFile)) log('reaped-orphan', { ...orphan });

  const secrets = await loadOrCreateSecrets(config.stateDir);
  const serviceUser = await ensureServiceUser(config.isRoot);
  const tools = locateTools(config);
  const ctx = createContext(config, secrets, tools, serviceUser);
  const supervisor = new Supervisor({
    specs: componentSpecs,
    ctx,
    logsDir: path.join(config.stateDir, 'logs'),
    pidFile,
    log,
    baseEnv: config.childEnv,
  });

  // One operation at a time: an `up` and a `scale` never interleave.
  let queue: Promise<unknown> = Promise.resolve();
  const serialize = <T>(operation: () => Promise<T>): Promise<T> => {
    const result = queue.then(operation, operation);
    queue = result.catch(() => undefined);
    return result;
  };

  let stopping = false;
  const stopAll = async (progress: (message: string) => void) => {
    stopping = true;
    await serialize(() => supervisor.down(progress));
  };

  const server = http.createServer((request, response) => {
    const stream = (operation: (progress: (message: string) => void) => Promise<void>) => {
      response.writeHead(200, { 'content-type': 'application/x-ndjson' });
      const progress = (message: string) =>
        response.write(`${JSON.stringify({ progress: message })}\n`);
      operation(progress).then(
        () => response.end(`${JSON.stringify({ ok: true })}\n`),
        (error: Error) => {
          log('operation-failed', { error: error.message });
          response.end(`${JSON.stringify({ ok: false, error: error.message })}\n`);
        },
      );
    };
    let body = '';
    request.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
    request.on('end', () => {
      const input = (body === '' ? {} : JSON.parse(body)) as {
        names?: string[];
        name?: string;
        count?: number;
      };
      const route = `${request.method} ${request.url}`;
      if (route === 'GET /status') {
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end(
          JSON.stringify({
            profile: config.profile,
            pid: process.pid,
            components: supervisor.status(),
            supervisor: groupMemory(process.pid),
          }),
        );
      } else if (route === 'POST /up' && !stopping) {
        stream((progress) =>
          serialize(async () => {
            Object.assign(tools, locateTools(config));
            const installed = new Set(Object.keys(tools));
            const names = componentSpecs
              .filter((spec) => input.names === undefined || input.names.includes(spec.name))
              .filter((spec) => spec.isAvailable?.() !== false)
              .filter((spec) => {
                const missing = spec.tools.filter((tool) => !installed.has(toolPathKey[tool]));
                if (missing.length > 0)
                  progress(`skipping ${spec.name}: ${missing.join(', ')} not installed`);
                return missing.length === 0;
              })
              .map((spec) => spec.name);
            await supervisor.up(names, progress);
          }),
        );
      } else if (route === 'POST /scale' && !stopping) {
        stream((progress) =>
          serialize(() => supervisor.scale(input.name ?? '', input.count ?? -1, progress)),
        );
      } else if (route === 'POST /down') {
        stream(async (progress) => {
          await stopAll(progress);
          setImmediate(() => shutdown(0));
        });
      } else {
        response.writeHead(stopping ? 503 : 404, { 'content-type': 'application/json' });
        response.end(
          JSON.stringify({
            ok: false,
            error: stopping ? 'the stack is stopping' : `no route ${route}`,
          }),
        );
      }
    });
  });

  const socket = socketPath(config);
  rmSync(socket, { force: true });
  const shutdown = (code: number) => {
    server.close();
    rmSync(socket, { force: true });
    rmSync(path.join(run, 'supervisor.pid'), { force: true });
    log('daemon-exit', { code });
    process.exit(code);
  };
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    process.on(signal, () => {
      log('signal', { signal });
      void stopAll(() => undefined).finally(() => shutdown(0));
    });
  }
  server.listen(socket, () => {
    writeFileSync(path.join(run, 'supervisor.pid'), `${process.pid}\n`);
    log('daemon-listening', { socket, profile: config.profile });
  });
}

main(process.argv.slice(2)).catch((error: unknown) => {
  process.stderr.write(`supervisor failed to start: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
