import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The layering of STYLE.md, read from the imports of every source file:
 * core ← config; core ← modules ← surfaces; storage drivers implement module ports; only app/ wires
 * drivers, config and surfaces together.
 */
const SRC = path.resolve(import.meta.dirname, '../src');

type Layer = 'core' | 'config' | 'modules' | 'storage' | 'surfaces' | 'app';

/** Internal layers each layer may import. */
const ALLOWED: Record<Layer, readonly Layer[]> = {
  core: ['core'],
  config: ['core', 'config'],
  modules: ['core', 'modules'],
  storage: ['core', 'modules', 'storage'],
  surfaces: ['core', 'modules', 'surfaces'],
  app: ['core', 'config', 'modules', 'storage', 'surfaces', 'app'],
};

/** Packages that are storage drivers: only storage/ (and app/, which picks them) may import them. */
const DRIVER_PACKAGES = ['better-sqlite3', 'sqlite-vec', 'usearch', 'pg', 'ioredis', 'redis'];
/** Packages that are transports: only surfaces/ and app/ may import them. */
const SURFACE_PACKAGES = ['@modelcontextprotocol/sdk', 'fastify', 'commander'];

interface Violation {
  file: string;
  specifier: string;
  reason: string;
}

function layerOf(file: string): Layer {
  const top = path.relative(SRC, file).split(path.sep)[0] as Layer;
  if (!(top in ALLOWED))
    throw new Error(`${file} is outside the known layers (${Object.keys(ALLOWED).join(', ')})`);
  return top;
}

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') ? [full] : [];
  });
}

function importsOf(source: string): string[] {
  const specifiers: string[] = [];
  const pattern = /(?:\bfrom\s*|\bimport\s*\(?\s*)['"]([^'"]+)['"]/g;
  for (const match of source.matchAll(pattern)) specifiers.push(match[1] as string);
  return specifiers;
}

function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? `${parts[0]}/${parts[1]}` : (parts[0] as string);
}

/** Every rule broken by one import of one file. */
function checkImport(file: string, specifier: string): Violation[] {
  const from = layerOf(file);
  if (specifier.startsWith('.')) {
    const target = path.resolve(path.dirname(file), specifier);
    if (!target.startsWith(SRC + path.sep)) return [{ file, specifier, reason: 'reaches outside src/' }];
    const to = layerOf(target);
    if (from === 'storage' && to === 'storage' && target.includes(`${path.sep}contract${path.sep}`)) {
      return file.includes(`${path.sep}contract${path.sep}`)
        ? []
        : [{ file, specifier, reason: 'a driver must not import the contract test suite' }];
    }
    return ALLOWED[from].includes(to) ? [] : [{ file, specifier, reason: `${from} must not import ${to}` }];
  }
  if (specifier.startsWith('node:')) return [];
  const pkg = packageName(specifier);
  if (DRIVER_PACKAGES.includes(pkg) && from !== 'storage' && from !== 'app') {
    return [{ file, specifier, reason: `${from} must not import the driver package ${pkg}` }];
  }
  if (SURFACE_PACKAGES.includes(pkg) && from !== 'surfaces' && from !== 'app') {
    return [{ file, specifier, reason: `${from} must not import the transport package ${pkg}` }];
  }
  return [];
}

describe('layering', () => {
  it('no source file imports across the layers the wrong way', () => {
    const files = sourceFiles(SRC);
    expect(files.length).toBeGreaterThan(20);
    const violations = files.flatMap((file) =>
      importsOf(fs.readFileSync(file, 'utf8')).flatMap((specifier) => checkImport(file, specifier)),
    );
    expect(violations.map((v) => `${path.relative(SRC, v.file)} → ${v.specifier}: ${v.reason}`)).toEqual([]);
  });

  it('catches the mistakes it exists for', () => {
    const module = path.join(SRC, 'modules/memory/memory-service.ts');
    const surface = path.join(SRC, 'surfaces/mcp/memory-tools.ts');
    expect(checkImport(module, '../../storage/sqlite/sqlite-memory-store.js')[0]?.reason).toBe(
      'modules must not import storage',
    );
    expect(checkImport(module, '../../surfaces/mcp/mcp-server.js')[0]?.reason).toBe(
      'modules must not import surfaces',
    );
    expect(checkImport(module, 'better-sqlite3')[0]?.reason).toMatch(/driver package better-sqlite3/);
    expect(checkImport(module, '@modelcontextprotocol/sdk/server/mcp.js')[0]?.reason).toMatch(
      /transport package/,
    );
    expect(checkImport(surface, '../../storage/sqlite/sqlite-database.js')[0]?.reason).toBe(
      'surfaces must not import storage',
    );
    expect(checkImport(surface, '../../config/load-config.js')[0]?.reason).toBe(
      'surfaces must not import config',
    );
    expect(checkImport(path.join(SRC, 'core/errors.ts'), '../modules/memory/memory-types.js')).toHaveLength(
      1,
    );
    expect(checkImport(path.join(SRC, 'app/build-brain.ts'), '../storage/sqlite/sqlite-database.js')).toEqual(
      [],
    );
  });

  it('finds static, type-only and dynamic imports', () => {
    const source = [
      "import a from './a.js';",
      "import type { B } from '../b.js';",
      "export { c } from './c.js';",
      "const d = await import('./d.js');",
    ].join('\n');
    expect(importsOf(source)).toEqual(['./a.js', '../b.js', './c.js', './d.js']);
  });
});
