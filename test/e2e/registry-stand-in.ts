/**
 * A stand-in for the npm registry (an outside service a test may not reach), on 127.0.0.1: it serves the
 * production dependencies installed in this checkout, so `npm install -g <tarball>` resolves and fetches
 * them as it would from the registry, and nothing leaves the machine. Each package version found in
 * `package-lock.json` (dev ones left out) gets a packument built from its installed package.json, and a
 * tarball packed from its installed folder on request. Optional packages for other platforms are not
 * installed, so they answer 404, which npm treats as an optional package it can skip.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

interface LockEntry {
  version?: string;
  dev?: boolean;
  link?: boolean;
}

interface Installed {
  dir: string;
  manifest: Record<string, unknown>;
}

/** The fields of an installed package.json that npm reads from a packument version. */
const MANIFEST_FIELDS = [
  'name',
  'version',
  'dependencies',
  'optionalDependencies',
  'peerDependencies',
  'peerDependenciesMeta',
  'bin',
  'os',
  'cpu',
  'libc',
  'engines',
  'scripts',
  'gypfile',
] as const;

/** Every production package version installed in `root`, by name and version. */
function installedPackages(root: string): Map<string, Map<string, Installed>> {
  const lock = JSON.parse(fs.readFileSync(path.join(root, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, LockEntry>;
  };
  const byName = new Map<string, Map<string, Installed>>();
  for (const [where, entry] of Object.entries(lock.packages)) {
    if (where === '' || entry.dev || entry.link || !entry.version) continue;
    const dir = path.join(root, where);
    const file = path.join(dir, 'package.json');
    if (!fs.existsSync(file)) continue; // an optional package for another platform
    const full = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
    const manifest = Object.fromEntries(MANIFEST_FIELDS.filter((f) => f in full).map((f) => [f, full[f]]));
    const name = String(full.name);
    const versions = byName.get(name) ?? new Map<string, Installed>();
    versions.set(String(full.version), { dir, manifest });
    byName.set(name, versions);
  }
  return byName;
}

/** A package folder as npm publishes it: a gzipped tar with everything under `package/`. */
function packFolder(dir: string): Buffer {
  return execFileSync(
    'tar',
    ['-cz', '--exclude=./node_modules', '--transform', 's,^\\.,package,', '-C', dir, '.'],
    { maxBuffer: 512 * 1024 * 1024 },
  );
}

export interface RegistryStandIn {
  url: string;
  /** Package specs requested that the stand-in does not have (404s), for diagnosing a failed install. */
  missing: string[];
  close(): Promise<void>;
}

/** Starts the stand-in on a free port of 127.0.0.1, serving the production packages of `root`. */
export async function startRegistryStandIn(root: string): Promise<RegistryStandIn> {
  const packages = installedPackages(root);
  const tarballs = new Map<string, { data: Buffer; integrity: string }>();
  const missing: string[] = [];
  const tarballOf = (name: string, version: string, installed: Installed) => {
    const key = `${name}@${version}`;
    let found = tarballs.get(key);
    if (!found) {
      const data = packFolder(installed.dir);
      found = { data, integrity: `sha512-${createHash('sha512').update(data).digest('base64')}` };
      tarballs.set(key, found);
    }
    return found;
  };

  const server = http.createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://127.0.0.1');
    const parts = decodeURIComponent(url.pathname).slice(1);
    const tarball = /^(.+)\/-\/[^/]+-(\d[^/]*)\.tgz$/.exec(parts);
    const name = tarball ? (tarball[1] as string) : parts;
    const versions = packages.get(name);
    if (!versions) {
      missing.push(name);
      response.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"Not found"}');
      return;
    }
    if (tarball) {
      const installed = versions.get(tarball[2] as string);
      if (!installed) {
        missing.push(parts);
        response.writeHead(404).end();
        return;
      }
      const { data } = tarballOf(name, tarball[2] as string, installed);
      response.writeHead(200, { 'content-type': 'application/octet-stream' }).end(data);
      return;
    }
    const base = `http://${request.headers.host}/${name}/-/${name.split('/').pop()}`;
    const entries = [...versions].map(([version, installed]) => {
      const { integrity } = tarballOf(name, version, installed);
      return [version, { ...installed.manifest, dist: { tarball: `${base}-${version}.tgz`, integrity } }];
    });
    const latest = entries.at(-1)?.[0] as string;
    response
      .writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify({ name, 'dist-tags': { latest }, versions: Object.fromEntries(entries) }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    missing,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
