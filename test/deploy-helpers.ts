import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';

/** The repository's deploy/ directory. */
export const DEPLOY = path.resolve(import.meta.dirname, '../deploy');

/** Directories made by {@link tempDir}; removed by {@link removeTempDirs} (afterAll). */
const made: string[] = [];

/** A fresh directory in the temp dir. */
export function tempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  made.push(dir);
  return dir;
}

export function removeTempDirs(): void {
  for (const dir of made.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
}

export interface ToolResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** stdout and stderr together, for messages. */
  output: string;
}

/** Runs a real tool (systemd-analyze, promtool) to completion. */
export function runTool(command: string, args: string[], options: { cwd?: string } = {}): ToolResult {
  const result = spawnSync(command, args, { encoding: 'utf8', cwd: options.cwd, timeout: 60_000 });
  if (result.error) throw new Error(`could not run ${command}: ${result.error.message}`);
  return {
    code: result.status,
    stdout: result.stdout,
    stderr: result.stderr,
    output: `${result.stdout}${result.stderr}`,
  };
}

/** Every YAML document of a file, parsed strictly: a YAML error or warning fails the caller. */
export function yamlDocuments(file: string): unknown[] {
  const docs = parseAllDocuments(fs.readFileSync(file, 'utf8'), { prettyErrors: true, uniqueKeys: true });
  const list = Array.isArray(docs) ? docs : [docs];
  return list
    .map((doc) => {
      const problems = [...doc.errors, ...doc.warnings];
      if (problems.length > 0) throw new Error(`${file}: ${problems.map((p) => p.message).join('; ')}`);
      return doc.toJS() as unknown;
    })
    .filter((value) => value !== null);
}

/** The one YAML document of a file. */
export function yamlDocument<T = Record<string, unknown>>(file: string): T {
  const docs = yamlDocuments(file);
  if (docs.length !== 1) throw new Error(`${file}: expected one YAML document, found ${docs.length}`);
  return docs[0] as T;
}

/**
 * The function a CommonJS package built from ES modules exports as `default`: Node's ESM loader hands
 * over the whole `exports` object, Vitest's interop the default itself.
 */
export function cjsDefault<T>(mod: T | { default: T }): T {
  return (mod as { default?: T }).default ?? (mod as T);
}
