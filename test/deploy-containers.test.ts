import fs from 'node:fs';
import path from 'node:path';
import dockerignoreModule from '@balena/dockerignore';
import { Ajv } from 'ajv';
import ajvFormatsModule from 'ajv-formats';
import { type Copy, DockerfileParser, type Env, type Instruction } from 'dockerfile-ast';
import { validate as lintDockerfile } from 'dockerfile-utils';
import { describe, expect, it } from 'vitest';
import { SETTINGS } from '../src/config/config-schema.js';
import { cjsDefault, DEPLOY, yamlDocument } from './deploy-helpers.js';

const dockerignore = cjsDefault(dockerignoreModule);
const addFormats = cjsDefault(ajvFormatsModule);

const ROOT = path.resolve(DEPLOY, '..');
const DOCKERFILE = path.join(DEPLOY, 'Dockerfile');
const KNOWN_ENV = new Set(SETTINGS.map((s) => s.env));

const dockerfile = () => DockerfileParser.parse(fs.readFileSync(DOCKERFILE, 'utf8'));
/** Arguments as Docker sees them after the instruction's keyword. */
const args = (instruction: Instruction) => instruction.getArguments().map((a) => a.getValue());

/** The instructions of each stage, by stage name, in order. */
function stages(): Map<string, Instruction[]> {
  const result = new Map<string, Instruction[]>();
  let current: Instruction[] | null = null;
  for (const instruction of dockerfile().getInstructions()) {
    if (instruction.getKeyword() === 'FROM') {
      current = [];
      result.set(args(instruction)[2] ?? `stage ${result.size}`, current);
    }
    current?.push(instruction);
  }
  return result;
}

describe('deploy/Dockerfile', () => {
  it('has no problem dockerfile-utils finds (and it would find one)', () => {
    expect(lintDockerfile(fs.readFileSync(DOCKERFILE, 'utf8'))).toEqual([]);
    expect(lintDockerfile('FROM node:20\nEXPOSE\nCOPY --from= a b\n').length).toBeGreaterThan(0);
  });

  it('is multi-stage: a build with dev dependencies, production dependencies, and the runtime', () => {
    const all = stages();
    expect([...all.keys()]).toEqual(['build', 'deps', 'runtime']);
    const runs = (stage: string) =>
      (all.get(stage) ?? []).filter((i) => i.getKeyword() === 'RUN').map((i) => args(i).join(' '));
    expect(runs('build').some((r) => /npm install/.test(r) && !/--omit=dev/.test(r))).toBe(true);
    expect(runs('build')).toContain('npm run build');
    expect(runs('deps').some((r) => /npm install .*--omit=dev/.test(r))).toBe(true);
    // The runtime installs no npm package itself: it copies the production node_modules.
    expect(runs('runtime').some((r) => /npm (install|ci)/.test(r))).toBe(false);
  });

  it('copies only from earlier stages, from paths that exist and that the .dockerignore lets through', () => {
    const names = [...stages().keys()];
    const ignore = dockerignore().add(
      fs.readFileSync(path.join(DEPLOY, 'Dockerfile.dockerignore'), 'utf8').split('\n'),
    );
    let seen = 0;
    for (const [stage, instructions] of stages()) {
      for (const instruction of instructions) {
        if (instruction.getKeyword() === 'ADD') throw new Error(`ADD in stage ${stage}: use COPY`);
        if (instruction.getKeyword() !== 'COPY') continue;
        const from = (instruction as Copy).getFromFlag()?.getValue();
        if (from !== undefined) {
          expect(names.slice(0, names.indexOf(stage))).toContain(from);
          continue;
        }
        for (const source of args(instruction).slice(0, -1)) {
          const file = path.join(ROOT, source);
          expect(fs.existsSync(file), source).toBe(true);
          const sample = fs.statSync(file).isDirectory()
            ? path.join(source, fs.readdirSync(file).find((f) => !f.endsWith('.test.ts')) ?? '')
            : source;
          expect({ source: sample, ignored: ignore.ignores(sample) }).toEqual({
            source: sample,
            ignored: false,
          });
          seen++;
        }
      }
    }
    expect(seen).toBeGreaterThan(3);
    for (const kept of [
      'node_modules/zod/package.json',
      'dist/app/cli-main.js',
      '.git/HEAD',
      'test/e2e/x.ts',
    ]) {
      expect({ kept, ignored: ignore.ignores(kept) }).toEqual({ kept, ignored: true });
    }
  });

  it('runs the runtime as a non-root user, with BRAIN_HOME on a volume and a health check on /health/live', () => {
    const runtime = stages().get('runtime') ?? [];
    const users = runtime.filter((i) => i.getKeyword() === 'USER').map((i) => args(i)[0] ?? '');
    expect(users).toHaveLength(1);
    const [uid, gid] = (users[0] as string).split(':');
    // Numeric, so that Kubernetes' runAsNonRoot can check it; not 0.
    expect(Number(uid)).toBeGreaterThan(0);
    expect(Number(gid)).toBeGreaterThan(0);

    const env = new Map(
      runtime
        .filter((i): i is Env => i.getKeyword() === 'ENV')
        .flatMap((e) => e.getProperties().map((p) => [p.getName(), p.getValue()] as const)),
    );
    for (const name of env.keys()) expect(KNOWN_ENV.has(name), name).toBe(true);
    expect(env.get('BRAIN_HOME')).toBe('/data');
    expect(env.get('BRAIN_HOST')).toBe('0.0.0.0');
    const volume = runtime.find((i) => i.getKeyword() === 'VOLUME');
    expect(volume?.getArgumentsContent()).toBe('["/data"]');

    const checks = runtime.filter((i) => i.getKeyword() === 'HEALTHCHECK');
    expect(checks).toHaveLength(1);
    expect(checks[0]?.getArgumentsContent()).toMatch(/CMD .*\/health\/live/);
    const entry = runtime.find((i) => i.getKeyword() === 'ENTRYPOINT')?.getArgumentsContent();
    expect(entry).toBe('["node", "/app/dist/app/cli-main.js"]');
    expect(runtime.find((i) => i.getKeyword() === 'CMD')?.getArgumentsContent()).toBe('["serve"]');
  });
});

interface ComposeService {
  profiles?: string[];
  read_only?: boolean;
  tmpfs?: string[];
  volumes?: string[];
  healthcheck?: { test: string[] | string };
  environment?: Record<string, string>;
  user?: string;
  image?: string;
  build?: { context: string; dockerfile: string };
  cap_drop?: string[];
}

describe('deploy/compose.yaml', () => {
  const compose = yamlDocument<{ services: Record<string, ComposeService> }>(
    path.join(DEPLOY, 'compose.yaml'),
  );

  it('is valid against the official Compose Specification schema (which rejects an unknown key)', () => {
    const schema = JSON.parse(
      fs.readFileSync(path.join(import.meta.dirname, 'schemas/compose-spec.json'), 'utf8'),
    );
    // Its $schema is draft-07 under an https URL Ajv does not know by that name; Ajv's default is draft-07.
    delete schema.$schema;
    const ajv = new Ajv({ allErrors: true, strict: false });
    addFormats(ajv);
    const check = ajv.compile(schema);
    expect(check(compose), JSON.stringify(check.errors)).toBe(true);
    const typo = structuredClone(compose);
    (typo.services.brain as Record<string, unknown>).read_onyl = true;
    expect(check(typo)).toBe(false);
  });

  it('runs brain read-only, BRAIN_HOME on a volume, /tmp on a tmpfs, not root, no capabilities', () => {
    const brain = compose.services.brain as ComposeService;
    expect(brain.profiles).toBeUndefined();
    expect(brain.read_only).toBe(true);
    expect(brain.tmpfs?.some((t) => t.startsWith('/tmp'))).toBe(true);
    expect(brain.volumes).toContain('brain-data:/data');
    expect(brain.environment?.BRAIN_HOME).toBe('/data');
    expect(brain.user).toMatch(/^[1-9]\d*:[1-9]\d*$/);
    expect(brain.cap_drop).toEqual(['ALL']);
    for (const name of Object.keys(brain.environment ?? {})) expect(KNOWN_ENV.has(name), name).toBe(true);
    expect(
      fs.existsSync(path.resolve(DEPLOY, brain.build?.context ?? '', brain.build?.dockerfile ?? '')),
    ).toBe(true);
  });

  it('offers PostgreSQL (pgvector), Redis and Prometheus behind profiles, every service with a health check', () => {
    const { services } = compose;
    expect(services.postgres?.profiles).toEqual(['postgres']);
    expect(services.postgres?.image).toMatch(/^pgvector\/pgvector:/);
    expect(services.redis?.profiles).toEqual(['redis']);
    expect(services.prometheus?.profiles).toEqual(['monitoring']);
    for (const [name, service] of Object.entries(services)) {
      expect({ name, healthcheck: service.healthcheck !== undefined }).toEqual({ name, healthcheck: true });
    }
    expect(JSON.stringify(services.brain?.healthcheck?.test)).toMatch(/\/health\/(live|ready)/);
    for (const mount of services.prometheus?.volumes ?? []) {
      const source = mount.split(':')[0] as string;
      if (source.startsWith('.')) expect(fs.existsSync(path.resolve(DEPLOY, source)), source).toBe(true);
    }
  });
});
