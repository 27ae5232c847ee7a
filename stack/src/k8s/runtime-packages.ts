import { existsSync, lstatSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';
import { build, type ImportKind } from 'esbuild';

// A service bundle keeps its npm dependencies external (stack/src/build.ts), so its image carries
// the node_modules the bundle reaches: the packages it imports, and everything those depend on,
// found the way Node finds them (nearest `node_modules` upwards from the importing file).

/** The part of a package.json that decides what a package needs at run time. */
export interface Manifest {
  readonly dependencies?: Readonly<Record<string, string>>;
  readonly optionalDependencies?: Readonly<Record<string, string>>;
  readonly peerDependencies?: Readonly<Record<string, string>>;
  readonly peerDependenciesMeta?: Readonly<Record<string, { readonly optional?: boolean }>>;
}

/** Reads the manifest of the package installed in `dir` (relative to the tree's root), if any. */
export type ManifestReader = (dir: string) => Manifest | undefined;

/** An import of the bundle that leaves it. */
export interface ExternalImport {
  readonly specifier: string;
  readonly kind: ImportKind;
}

export interface Closure {
  /** Package directories relative to the tree's root, sorted (`node_modules/a`, `x/node_modules/b`). */
  readonly packages: readonly string[];
  /** Required packages that are not installed, with the directory that asked for them. */
  readonly missing: readonly { readonly name: string; readonly from: string }[];
}

const builtins = new Set(builtinModules);

/** The npm package an import specifier names (`@scope/a/sub` → `@scope/a`), or undefined for built-ins and paths. */
export function packageNameOf(specifier: string): string | undefined {
  if (specifier.startsWith('node:') || specifier.startsWith('.') || specifier.startsWith('/')) {
    return undefined;
  }
  const parts = specifier.split('/');
  const name = specifier.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] ?? '');
  if (name === '' || builtins.has(name)) return undefined;
  return name;
}

/**
 * Where Node finds package `name` from directory `from` (both relative to the tree's root): the
 * first `<ancestor>/node_modules/<name>` with a manifest, never looking above the root.
 */
export function resolvePackage(
  name: string,
  from: string,
  read: ManifestReader,
): string | undefined {
  const segments = from.split('/').filter((segment) => segment !== '' && segment !== '.');
  for (let length = segments.length; length >= 0; length -= 1) {
    const base = segments.slice(0, length);
    // Node never looks in node_modules/node_modules.
    if (base.at(-1) === 'node_modules') continue;
    const candidate = [...base, 'node_modules', name].join('/');
    if (read(candidate) !== undefined) return candidate;
  }
  return undefined;
}

/**
 * Every package reachable from `roots` (names imported from directory `from`), walking
 * `dependencies`, the `optionalDependencies` that are installed (native addons come this way) and
 * the peers that are not optional. A required package that is not installed is reported, not skipped.
 */
export function packageClosure(
  roots: readonly { readonly name: string; readonly from: string; readonly isOptional?: boolean }[],
  read: ManifestReader,
): Closure {
  const found = new Set<string>();
  const missing: { name: string; from: string }[] = [];
  const queue: string[] = [];
  const visit = (name: string, from: string, isOptional: boolean) => {
    const dir = resolvePackage(name, from, read);
    if (dir === undefined) {
      if (!isOptional) missing.push({ name, from });
      return;
    }
    if (found.has(dir)) return;
    found.add(dir);
    queue.push(dir);
  };
  for (const root of roots) visit(root.name, root.from, root.isOptional ?? false);
  for (let dir = queue.shift(); dir !== undefined; dir = queue.shift()) {
    const manifest = read(dir) ?? {};
    const optionalPeers = manifest.peerDependenciesMeta ?? {};
    for (const name of Object.keys(manifest.dependencies ?? {})) {
      // npm lists an optional dependency in both maps; the optional entry wins.
      if (manifest.optionalDependencies?.[name] === undefined) visit(name, dir, false);
    }
    for (const name of Object.keys(manifest.optionalDependencies ?? {})) visit(name, dir, true);
    for (const name of Object.keys(manifest.peerDependencies ?? {})) {
      if (optionalPeers[name]?.optional !== true) visit(name, dir, false);
    }
  }
  return { packages: [...found].sort(), missing };
}

/**
 * The imports that leave a bundle (static imports, `require` and esbuild's `__require` calls with a
 * literal name, and literal dynamic imports), found by letting esbuild parse it again with every
 * import external. A name computed at run time cannot be found: such a package must be reachable
 * from one that is (the telemetry's instrumented modules are dependencies of the service).
 */
export async function externalImports(code: string): Promise<ExternalImport[]> {
  const result = await build({
    stdin: { contents: code, loader: 'js', resolveDir: '/' },
    bundle: true,
    write: false,
    metafile: true,
    platform: 'node',
    format: 'esm',
    logLevel: 'silent',
    plugins: [
      {
        name: 'everything-external',
        setup(pluginBuild) {
          pluginBuild.onResolve({ filter: /.*/ }, (args) => ({ path: args.path, external: true }));
        },
      },
    ],
  });
  const seen = new Map<string, ExternalImport>();
  const add = (specifier: string, kind: ImportKind) => {
    const key = `${kind} ${specifier}`;
    if (!seen.has(key)) seen.set(key, { specifier, kind });
  };
  for (const input of Object.values(result.metafile.inputs)) {
    for (const entry of input.imports) add(entry.path, entry.kind);
  }
  // Bundled CommonJS reaches an external through esbuild's `__require` shim, which a second parse
  // takes for an ordinary function.
  for (const match of code.matchAll(/\b__require\(\s*["']([^"'\s]+)["']\s*\)/g)) {
    if (match[1] !== undefined) add(match[1], 'require-call');
  }
  return [...seen.values()].sort((a, b) => a.specifier.localeCompare(b.specifier));
}

/**
 * Reads manifests under `root` from disk. A package that is a symbolic link (a workspace or
 * `npm link`) is refused: Node would resolve its dependencies from where the link points.
 */
export function diskManifestReader(root: string): ManifestReader {
  const cache = new Map<string, Manifest | undefined>();
  return (dir) => {
    if (cache.has(dir)) return cache.get(dir);
    const absolute = path.join(root, dir);
    let manifest: Manifest | undefined;
    if (existsSync(path.join(absolute, 'package.json'))) {
      if (lstatSync(absolute).isSymbolicLink()) {
        throw new Error(`${dir} is a symbolic link; an image cannot carry a linked package`);
      }
      manifest = JSON.parse(readFileSync(path.join(absolute, 'package.json'), 'utf8')) as Manifest;
    }
    cache.set(dir, manifest);
    return manifest;
  };
}

/**
 * The installed packages some bundles need at run time (a service's main and its job entry points),
 * relative to `root` (the repository). Each bundle's imports resolve from its own directory.
 */
export async function bundleClosure(
  root: string,
  bundleFiles: readonly string[],
): Promise<Closure> {
  const roots: { name: string; from: string; isOptional: boolean }[] = [];
  for (const bundleFile of bundleFiles) {
    const imports = await externalImports(readFileSync(path.join(root, bundleFile), 'utf8'));
    for (const entry of imports) {
      const name = packageNameOf(entry.specifier);
      // Only a static import must be there; a literal `require` or `import()` may sit in a try.
      if (name !== undefined) {
        roots.push({
          name,
          from: path.dirname(bundleFile),
          isOptional: entry.kind !== 'import-statement',
        });
      }
    }
  }
  return packageClosure(roots, diskManifestReader(root));
}
