import { execFile, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { brainEnv, tempHome } from './brain-process.js';
import { type RegistryStandIn, startRegistryStandIn } from './registry-stand-in.js';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  private?: boolean;
  bin?: Record<string, string>;
};

let dir: string;
let brainBin: string;
let registry: RegistryStandIn | undefined;

/**
 * better-sqlite3's install script (prebuild-install) first looks for a prebuilt binary in a local
 * directory, then downloads one from GitHub, and compiles sqlite3.c only when both fail (2-4 minutes
 * on two cores). The test offers it the binary this checkout already built for this Node: the path a
 * user on a common platform takes (a prebuilt binary), without traffic leaving the machine. Should the
 * registry resolve another better-sqlite3 version, the name does not match and it downloads or
 * compiles: slower, still correct.
 */
function offerLocalPrebuild(): Record<string, string> {
  const module = path.join(ROOT, 'node_modules', 'better-sqlite3');
  const { version } = JSON.parse(fs.readFileSync(path.join(module, 'package.json'), 'utf8')) as {
    version: string;
  };
  const prebuilds = path.join(dir, 'prebuilds');
  fs.mkdirSync(prebuilds);
  const name = `better-sqlite3-v${version}-node-v${process.versions.modules}-${process.platform}-${process.arch}.tar.gz`;
  execFileSync('tar', [
    '-czf',
    path.join(prebuilds, name),
    '-C',
    module,
    'build/Release/better_sqlite3.node',
  ]);
  return { npm_config_better_sqlite3_local_prebuilds: prebuilds };
}

/** npm without the checkout's own npm_* settings leaking in from the test runner's environment. */
async function npm(args: string[], cwd: string, extra: Record<string, string> = {}): Promise<string> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_/i.test(name)));
  const { stdout } = await run('npm', args, { cwd, env: { ...env, ...extra }, maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

/**
 * `npm pack` of the built checkout, then `npm install -g` of the tarball into a temp prefix: exactly
 * what a user (or `npx`) gets from the registry, with the machine's global directory left alone. The
 * e2e suite runs after `npm run build`, so the pack reuses dist/ instead of running prepack's build.
 * npm resolves the dependencies against a stand-in for the registry on 127.0.0.1 (registry-stand-in.ts)
 * with an empty cache of its own, so the test neither leaves the machine nor depends on what this
 * machine's npm cache happens to hold.
 */
beforeAll(async () => {
  dir = tempHome('brain-package-e2e-');
  registry = await startRegistryStandIn(ROOT);
  const packed = JSON.parse(
    await npm(['pack', '--json', '--ignore-scripts', '--pack-destination', dir], ROOT),
  ) as { filename: string }[];
  const tarball = path.join(dir, packed[0]?.filename ?? '');
  const prefix = path.join(dir, 'prefix');
  const settings = [
    `--registry=${registry.url}`,
    `--cache=${path.join(dir, 'npm-cache')}`,
    '--no-audit',
    '--no-fund',
    '--no-update-notifier',
    // Anything npm (or an install script) tried to reach besides the stand-in would fail here.
    '--proxy=http://127.0.0.1:9',
    '--https-proxy=http://127.0.0.1:9',
    '--noproxy=127.0.0.1',
  ];
  try {
    await npm(['install', '-g', '--prefix', prefix, tarball, ...settings], dir, offerLocalPrebuild());
  } catch (error) {
    throw new Error(`npm install -g failed; the stand-in registry lacked: ${registry.missing.join(', ')}`, {
      cause: error,
    });
  }
  brainBin = path.join(prefix, 'bin', 'brain');
}, 600_000);

afterAll(async () => {
  await registry?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe(`the packed ${pkg.name} package`, () => {
  it('is publishable under its own name, with the brain command, and the README shows npx', () => {
    // `brain` on the registry is an unrelated package: `npx brain mcp` would run someone else's code.
    expect(pkg.name).not.toBe('brain');
    expect(pkg.private).toBeUndefined();
    expect(pkg.bin).toEqual({ brain: 'dist/app/cli-main.js' });
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    expect(readme).toContain(`"args": ["-y", "${pkg.name}", "mcp"]`);
    expect(readme).toContain(`claude mcp add brain -- npx -y ${pkg.name} mcp`);
  });

  it('contains the built program and no tests, source maps or sources', async () => {
    const [report] = JSON.parse(await npm(['pack', '--dry-run', '--json', '--ignore-scripts'], ROOT)) as {
      name: string;
      files: { path: string }[];
    }[];
    const files = report?.files.map((f) => f.path) ?? [];
    expect(report?.name).toBe(pkg.name);
    expect(files).toContain('dist/app/cli-main.js');
    expect(files).toContain('dist/surfaces/mcp/stdio-transport.js');
    expect(files.filter((f) => /\.test\.|\.map$|^src\/|^test\/|^bench\//.test(f))).toEqual([]);
  });

  it('installs a brain command that prints its version', async () => {
    const { stdout } = await run(brainBin, ['--version'], { env: brainEnv({}) });
    expect(stdout.trim()).toBe(pkg.version);
  });

  it('serves MCP over stdio to the SDK client (initialize + tools/list)', async () => {
    const home = path.join(dir, 'mcp-home');
    const transport = new StdioClientTransport({
      command: brainBin,
      args: ['mcp'],
      env: brainEnv({ BRAIN_HOME: home }) as Record<string, string>,
      cwd: dir,
      stderr: 'pipe',
    });
    const client = new Client({ name: 'package-e2e', version: '0.0.0' });
    await client.connect(transport);
    try {
      expect(client.getServerVersion()).toMatchObject({ name: 'brain', version: pkg.version });
      expect((await client.listTools()).tools.map((t) => t.name)).toContain('remember');
    } finally {
      await client.close();
    }
    expect(fs.existsSync(path.join(home, 'data', 'brain.db'))).toBe(true);
  });

  it('serves HTTP with brain serve --port 0 (GET /health/live)', async () => {
    const child = spawn(brainBin, ['serve', '--port', '0'], {
      env: brainEnv({ BRAIN_HOME: path.join(dir, 'serve-home') }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    try {
      let logs = '';
      const url = await new Promise<string>((resolve, reject) => {
        child.stdout.on('data', (chunk) => {
          logs += chunk;
          const match = /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(logs);
          if (match?.[1]) resolve(match[1]);
        });
        exited.then((code) => reject(new Error(`brain serve exited with ${code}:\n${logs}`)));
      });
      const response = await fetch(`${url}/health/live`);
      expect(response.status).toBe(200);
      expect(await response.json()).toMatchObject({ status: 'ok', version: pkg.version });
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  });
});
