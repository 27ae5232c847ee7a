import { Resolver } from 'node:dns/promises';
import { rmSync } from 'node:fs';
import net from 'node:net';
import { CLUSTER_DOMAIN, DNS_SERVICE_IP, PUBLIC_PORT, RELEASE_NAMESPACE } from './layout';

/**
 * The cluster's public entry on the host. A process is in one network namespace only, so it takes
 * two: `outer` listens on the host's 127.0.0.1:18080 and hands each connection to a Unix socket
 * (a file, which both namespaces see); `inner` runs in the cluster's namespace, takes it from the
 * socket and connects to the edge Service, resolved through the cluster's DNS per connection (the
 * Service may be recreated by an uninstall and install).
 */
const EDGE_HOST = `edge.${RELEASE_NAMESPACE}.svc.${CLUSTER_DOMAIN}`;
const EDGE_PORT = 8080;

function pipe(client: net.Socket, connect: () => Promise<net.Socket>) {
  client.pause();
  connect().then(
    (upstream) => {
      upstream.on('error', () => client.destroy());
      client.on('error', () => upstream.destroy());
      upstream.pipe(client);
      client.pipe(upstream);
      client.resume();
    },
    () => client.destroy(),
  );
}

function connected(socket: net.Socket): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

export function startInner(socketPath: string): net.Server {
  const resolver = new Resolver({ timeout: 1000, tries: 2 });
  resolver.setServers([DNS_SERVICE_IP]);
  let cached: { address: string; until: number } | undefined;
  const edgeAddress = async () => {
    if (cached !== undefined && cached.until > Date.now()) return cached.address;
    const [address] = await resolver.resolve4(EDGE_HOST);
    if (address === undefined) throw new Error(`${EDGE_HOST} has no address`);
    cached = { address, until: Date.now() + 1000 };
    return address;
  };
  rmSync(socketPath, { force: true });
  const server = net.createServer((client) =>
    pipe(client, async () => {
      const address = await edgeAddress();
      return connected(net.connect({ host: address, port: EDGE_PORT }));
    }),
  );
  server.listen(socketPath);
  return server;
}

export function startOuter(socketPath: string): net.Server {
  const server = net.createServer((client) =>
    pipe(client, () => connected(net.connect({ path: socketPath }))),
  );
  server.listen(PUBLIC_PORT, '127.0.0.1');
  return server;
}

/** True when something accepts TCP connections on 127.0.0.1:`port`. */
export function isListening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** `node k8s-forward.mjs inner|outer <socket>`: run by `npm run k8s -- up` as two daemons. */
export function forwardMain(argv: readonly string[]): void {
  const [mode, socketPath] = argv;
  if (socketPath === undefined || (mode !== 'inner' && mode !== 'outer')) {
    console.error('usage: k8s-forward inner|outer <unix socket>');
    process.exit(2);
  }
  const server = mode === 'inner' ? startInner(socketPath) : startOuter(socketPath);
  server.on('error', (error) => {
    console.error(`k8s-forward ${mode}: ${error.message}`);
    process.exit(1);
  });
  const close = () => server.close(() => process.exit(0));
  process.on('SIGTERM', close);
  process.on('SIGINT', close);
}
