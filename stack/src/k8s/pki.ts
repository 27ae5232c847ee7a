import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { runChecked } from '../run';

/** One certificate the cluster needs: who it names, and for a server, the names it answers to. */
export interface CertSpec {
  readonly name: string;
  readonly commonName: string;
  readonly organization?: string;
  /** Subject alternative names (`IP:…`, `DNS:…`): set for serving certificates. */
  readonly altNames?: readonly string[];
}

/** The extensions of a leaf certificate, in openssl's `-extfile` syntax. */
export function leafExtensions(spec: CertSpec): string {
  const server = spec.altNames !== undefined && spec.altNames.length > 0;
  return [
    'basicConstraints = critical, CA:FALSE',
    'keyUsage = critical, digitalSignature, keyEncipherment',
    `extendedKeyUsage = ${server ? 'serverAuth, clientAuth' : 'clientAuth'}`,
    ...(server ? [`subjectAltName = ${(spec.altNames ?? []).join(', ')}`] : []),
  ].join('\n');
}

/** The `-subj` argument; `/` and `=` never occur in our names, so no escaping is needed. */
export function subject(spec: Pick<CertSpec, 'commonName' | 'organization'>): string {
  return `${spec.organization === undefined ? '' : `/O=${spec.organization}`}/CN=${spec.commonName}`;
}

const openssl = (args: readonly string[], cwd: string) => runChecked('openssl', args, { cwd });

async function ecKey(dir: string, name: string) {
  await openssl(
    ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${name}.key`],
    dir,
  );
}

/**
 * Creates the cluster's CA, the service-account signing key and every leaf certificate that is
 * missing in `dir` (so a restart keeps them). Keys are EC P-256, valid for 30 days: a local
 * cluster is recreated long before.
 */
export async function ensurePki(dir: string, certs: readonly CertSpec[]): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  if (!existsSync(path.join(dir, 'ca.crt'))) {
    await ecKey(dir, 'ca');
    await openssl(
      [
        'req',
        '-x509',
        '-new',
        '-key',
        'ca.key',
        '-subj',
        '/CN=bazaar-local-cluster-ca',
        '-days',
        '30',
        '-addext',
        'basicConstraints=critical,CA:TRUE',
        '-addext',
        'keyUsage=critical,keyCertSign,cRLSign,digitalSignature',
        '-out',
        'ca.crt',
      ],
      dir,
    );
  }
  if (!existsSync(path.join(dir, 'sa.key'))) {
    await openssl(
      ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', 'sa.key'],
      dir,
    );
    await openssl(['pkey', '-in', 'sa.key', '-pubout', '-out', 'sa.pub'], dir);
  }
  for (const spec of certs) {
    if (existsSync(path.join(dir, `${spec.name}.crt`))) continue;
    await ecKey(dir, spec.name);
    await openssl(
      [
        'req',
        '-new',
        '-key',
        `${spec.name}.key`,
        '-subj',
        subject(spec),
        '-out',
        `${spec.name}.csr`,
      ],
      dir,
    );
    await writeFile(path.join(dir, `${spec.name}.ext`), `${leafExtensions(spec)}\n`);
    await openssl(
      [
        'x509',
        '-req',
        '-in',
        `${spec.name}.csr`,
        '-CA',
        'ca.crt',
        '-CAkey',
        'ca.key',
        '-CAcreateserial',
        '-days',
        '30',
        '-extfile',
        `${spec.name}.ext`,
        '-out',
        `${spec.name}.crt`,
      ],
      dir,
    );
  }
}

/** A kubeconfig for one client certificate of `pkiDir`. */
export function kubeconfig(server: string, pkiDir: string, name: string): string {
  const file = (suffix: string) => JSON.stringify(path.join(pkiDir, suffix));
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '  - name: bazaar',
    '    cluster:',
    `      server: ${server}`,
    `      certificate-authority: ${file('ca.crt')}`,
    'users:',
    `  - name: ${name}`,
    '    user:',
    `      client-certificate: ${file(`${name}.crt`)}`,
    `      client-key: ${file(`${name}.key`)}`,
    'contexts:',
    '  - name: bazaar',
    '    context:',
    '      cluster: bazaar',
    `      user: ${name}`,
    'current-context: bazaar',
    '',
  ].join('\n');
}
