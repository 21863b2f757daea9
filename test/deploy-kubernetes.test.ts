import fs from 'node:fs';
import path from 'node:path';
import { DockerfileParser } from 'dockerfile-ast';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DRAIN_TIMEOUT_MS } from '../src/app/shutdown.js';
import { SETTINGS } from '../src/config/config-schema.js';
import { loadConfig } from '../src/config/load-config.js';
import { DEPLOY, removeTempDirs, tempDir, yamlDocuments } from './deploy-helpers.js';
import { fieldProblems, type Manifest, modelsModule } from './kubernetes-fields.js';

const KUBERNETES = path.join(DEPLOY, 'kubernetes');
const KNOWN_ENV = new Set(SETTINGS.map((s) => s.env));

/** Every `*.yaml` under deploy/kubernetes/, relative to it. */
function manifestFiles(dir = KUBERNETES): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((entry) =>
      entry.isDirectory()
        ? manifestFiles(path.join(dir, entry.name))
        : entry.name.endsWith('.yaml') || entry.name.endsWith('.yml')
          ? [path.relative(KUBERNETES, path.join(dir, entry.name))]
          : [],
    )
    .sort();
}

interface Named {
  /** `file#index kind/name`, for messages. */
  name: string;
  file: string;
  manifest: Manifest;
}

const all: Named[] = manifestFiles().flatMap((file) =>
  yamlDocuments(path.join(KUBERNETES, file)).map((doc, index) => {
    const manifest = doc as Manifest;
    return { name: `${file}#${index} ${manifest.kind}/${manifest.metadata?.name}`, file, manifest };
  }),
);

/**
 * kubernetes-models' model of an object's apiVersion and kind, validated (JSON Schema of the Kubernetes
 * 1.27 OpenAPI): throws naming the field, or when kubernetes-models has no such kind in that apiVersion.
 */
async function validateManifest(manifest: Manifest): Promise<void> {
  const models = (await import(modelsModule(manifest.apiVersion)).catch(() => ({}))) as Record<
    string,
    { apiVersion?: string; kind?: string; new (data: unknown): { validate(): void } } | undefined
  >;
  const Model = models[manifest.kind];
  if (!Model || Model.apiVersion !== manifest.apiVersion || Model.kind !== manifest.kind)
    throw new Error(`no Kubernetes kind ${manifest.kind} in apiVersion ${manifest.apiVersion}`);
  new Model(manifest).validate();
}

/** The manifests of one mode: PostgreSQL (the top directory) or SQLite (sqlite/), plus the shared ones. */
const inMode = (mode: 'postgres' | 'sqlite') =>
  all.filter(
    (m) =>
      (mode === 'sqlite' ? m.file.startsWith('sqlite/') : !m.file.includes('/')) ||
      m.file === 'serviceaccount.yaml',
  );
const find = (list: Named[], kind: string) =>
  list.filter((m) => m.manifest.kind === kind).map((m) => m.manifest);

// biome-ignore lint/suspicious/noExplicitAny: manifests are walked as plain JSON below.
type Json = any;

describe('deploy/kubernetes manifests', () => {
  afterAll(removeTempDirs);

  it('are read from every file, each document a Kubernetes object', () => {
    expect(manifestFiles()).toEqual(
      expect.arrayContaining(['deployment.yaml', 'hpa.yaml', 'pdb.yaml', 'sqlite/brain-sqlite.yaml']),
    );
    expect(all.length).toBeGreaterThanOrEqual(11);
    for (const { name, manifest } of all) {
      expect({ name, apiVersion: typeof manifest.apiVersion, kind: typeof manifest.kind }).toEqual({
        name,
        apiVersion: 'string',
        kind: 'string',
      });
    }
  });

  it.each(all.map((m) => [m.name, m.manifest] as const))(
    '%s is valid for its kind (kubernetes-models)',
    async (_n, manifest) => {
      await expect(validateManifest(manifest)).resolves.toBeUndefined();
    },
  );

  it('has no unknown field in any document (TypeScript interfaces of kubernetes-models)', () => {
    expect(Object.fromEntries(fieldProblems(all))).toEqual({});
  });

  it('the validators catch a wrong type, a typo, an unknown kind and an old apiVersion', async () => {
    const deployment = structuredClone(find(all, 'Deployment')[0]) as Json;
    deployment.spec.replicas = 'two';
    await expect(validateManifest(deployment)).rejects.toThrow(/replicas must be integer/);

    const typo = structuredClone(find(all, 'Deployment')[0]) as Json;
    const container = typo.spec.template.spec.containers[0];
    container.readynessProbe = container.readinessProbe;
    delete container.readinessProbe;
    // validate() lets an extra field through: the interface check is what catches it.
    await expect(validateManifest(typo)).resolves.toBeUndefined();
    const problems = fieldProblems([{ name: 'typo', manifest: typo }]).get('typo') ?? [];
    expect(problems.join('\n')).toMatch(/'"?readynessProbe"?' does not exist in type/);

    await expect(validateManifest({ ...deployment, kind: 'Deploymnet' })).rejects.toThrow(
      /no Kubernetes kind Deploymnet/,
    );
    const hpa = find(all, 'HorizontalPodAutoscaler')[0] as Manifest;
    await expect(validateManifest({ ...hpa, apiVersion: 'autoscaling/v2beta9' })).rejects.toThrow(
      /no Kubernetes kind/,
    );
  });
});

/** Checks of one pod template, shared by the PostgreSQL Deployment and the SQLite StatefulSet. */
function checkPodTemplate(mode: 'postgres' | 'sqlite', workload: Json): void {
  const list = inMode(mode);
  const pod = workload.spec.template.spec;
  const [container] = pod.containers;
  expect(pod.containers).toHaveLength(1);

  // Settings: every variable the container gets is a Brain setting, and together they load cleanly.
  const env: Record<string, string> = {};
  for (const from of container.envFrom) {
    const ref = from.configMapRef ?? from.secretRef;
    const kind = from.configMapRef ? 'ConfigMap' : 'Secret';
    const source = find(list, kind).find((m) => m.metadata?.name === ref.name) as Json;
    expect({ ref: ref.name, found: source !== undefined }).toEqual({ ref: ref.name, found: true });
    Object.assign(env, source.data, source.stringData);
  }
  for (const variable of container.env ?? []) env[variable.name] = variable.value;
  for (const name of Object.keys(env))
    expect({ name, known: KNOWN_ENV.has(name) }).toEqual({ name, known: true });
  // BRAIN_HOME is the pod's volume; here a temp dir stands in for it.
  const home = tempDir('brain-k8s-');
  const loaded = loadConfig({ env: { ...env, BRAIN_HOME: home }, cwd: home });
  expect(loaded.problems).toEqual([]);
  expect(loaded.warnings).toEqual([]);

  // Ports: the API and metrics ports are the settings' own, named, and what the probes and Service use.
  const ports = new Map<string, number>(container.ports.map((p: Json) => [p.name, p.containerPort]));
  expect(ports.get('http')).toBe(loaded.config.port);
  expect(ports.get('metrics')).toBe(loaded.config.metricsPort);
  expect(workload.spec.template.metadata.annotations['prometheus.io/port']).toBe(
    String(loaded.config.metricsPort),
  );
  expect(loaded.config.host).toBe('0.0.0.0');

  // Probes: liveness on /health/live, readiness on /health/ready, a startup probe allowing for migrations.
  const probe = (name: string) => container[name].httpGet;
  expect(probe('livenessProbe')).toEqual({ path: '/health/live', port: 'http' });
  expect(probe('readinessProbe')).toEqual({ path: '/health/ready', port: 'http' });
  expect(probe('startupProbe')).toEqual({ path: '/health/live', port: 'http' });

  // Security: non-root (the image's numeric user), read-only root, no capability, no escalation.
  const user = DockerfileParser.parse(fs.readFileSync(path.join(DEPLOY, 'Dockerfile'), 'utf8'))
    .getInstructions()
    .filter((i) => i.getKeyword() === 'USER')
    .at(-1)
    ?.getArgumentsContent();
  expect(pod.securityContext).toMatchObject({
    runAsNonRoot: true,
    runAsUser: Number(user?.split(':')[0]),
    runAsGroup: Number(user?.split(':')[1]),
    seccompProfile: { type: 'RuntimeDefault' },
  });
  expect(container.securityContext).toEqual({
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    privileged: false,
    capabilities: { drop: ['ALL'] },
  });
  expect(pod.automountServiceAccountToken).toBe(false);

  // With the root read-only, BRAIN_HOME and /tmp are the writable mounts.
  const mounts = new Map<string, string>(container.volumeMounts.map((m: Json) => [m.mountPath, m.name]));
  expect(env.BRAIN_HOME).toBe('/data');
  expect(mounts.has(env.BRAIN_HOME as string)).toBe(true);
  expect(mounts.has('/tmp')).toBe(true);
  const volumes = new Set([
    ...pod.volumes.map((v: Json) => v.name),
    ...(workload.spec.volumeClaimTemplates ?? []).map((v: Json) => v.metadata.name),
  ]);
  for (const name of mounts.values()) expect(volumes.has(name), name).toBe(true);

  // Resources: requests and limits for both CPU and memory.
  for (const part of ['requests', 'limits'])
    for (const resource of ['cpu', 'memory'])
      expect(container.resources[part][resource], `${part}.${resource}`).toBeTruthy();

  // The pod gets more time to stop than the preStop pause and Brain's drain take.
  const pause = Number(container.lifecycle?.preStop?.exec?.command?.[1] ?? 0);
  expect(pod.terminationGracePeriodSeconds * 1000).toBeGreaterThan(pause * 1000 + DRAIN_TIMEOUT_MS);

  // The Service selects these pods and targets their named ports.
  const labels = workload.spec.template.metadata.labels;
  expect(workload.spec.selector.matchLabels).toEqual(labels);
  const services = find(list, 'Service') as Json[];
  expect(services).toHaveLength(1);
  expect(services[0].spec.selector).toEqual(labels);
  for (const port of services[0].spec.ports) expect(ports.has(port.targetPort), port.targetPort).toBe(true);
}

describe('PostgreSQL mode (deploy/kubernetes/*.yaml)', () => {
  const list = inMode('postgres');
  const deployment = find(list, 'Deployment')[0] as Json;

  beforeAll(() => {
    expect(deployment).toBeDefined();
  });
  afterAll(removeTempDirs);

  it('runs Brain with health probes, hardening, limits, its settings and the Service in front', () => {
    checkPodTemplate('postgres', deployment);
  });

  it('is stateless replicas on PostgreSQL: a database URL, no volume that outlives a pod, rolling without loss', () => {
    const secret = find(list, 'Secret')[0] as Json;
    expect(secret.stringData.BRAIN_DATABASE_URL).toMatch(/^postgres(ql)?:\/\//);
    expect(deployment.spec.replicas).toBeGreaterThanOrEqual(2);
    expect(deployment.spec.template.spec.volumes.every((v: Json) => v.emptyDir !== undefined)).toBe(true);
    expect(deployment.spec.strategy.rollingUpdate.maxUnavailable).toBe(0);
  });

  it('scales with an autoscaling/v2 HPA on the Deployment, and a PodDisruptionBudget keeps one pod up', () => {
    const hpa = find(all, 'HorizontalPodAutoscaler');
    expect(hpa).toHaveLength(1);
    const [autoscaler] = hpa as Json[];
    expect(autoscaler.apiVersion).toBe('autoscaling/v2');
    expect(autoscaler.spec.scaleTargetRef).toEqual({
      apiVersion: deployment.apiVersion,
      kind: 'Deployment',
      name: deployment.metadata.name,
    });
    expect(autoscaler.spec.minReplicas).toBeGreaterThanOrEqual(2);
    expect(autoscaler.spec.maxReplicas).toBeGreaterThan(autoscaler.spec.minReplicas);
    // Utilization targets mean something only against requests.
    for (const metric of autoscaler.spec.metrics)
      expect(
        deployment.spec.template.spec.containers[0].resources.requests[metric.resource.name],
      ).toBeTruthy();

    const pdb = find(all, 'PodDisruptionBudget') as Json[];
    expect(pdb).toHaveLength(1);
    expect(pdb[0].apiVersion).toBe('policy/v1');
    expect(pdb[0].spec.selector.matchLabels).toEqual(deployment.spec.template.metadata.labels);
    expect(pdb[0].spec.minAvailable).toBeLessThan(autoscaler.spec.minReplicas);
  });

  it('ships placeholders, not secrets, in its Secret', () => {
    for (const { manifest } of all.filter((m) => m.manifest.kind === 'Secret'))
      for (const value of Object.values((manifest as Json).stringData as Record<string, string>))
        expect(value).toMatch(/CHANGE_IN_PRODUCTION/);
  });
});

describe('SQLite mode (deploy/kubernetes/sqlite/brain-sqlite.yaml)', () => {
  const list = inMode('sqlite');
  const statefulSet = find(list, 'StatefulSet')[0] as Json;
  afterAll(removeTempDirs);

  it('runs Brain with health probes, hardening, limits, its settings and the Service in front', () => {
    checkPodTemplate('sqlite', statefulSet);
  });

  it('is exactly one pod with its data on a persistent volume, and nothing scales it', () => {
    expect(statefulSet.spec.replicas).toBe(1);
    const [claim] = statefulSet.spec.volumeClaimTemplates;
    expect(claim.spec.accessModes).toEqual(['ReadWriteOnce']);
    const home = statefulSet.spec.template.spec.containers[0].volumeMounts.find(
      (m: Json) => m.name === claim.metadata.name,
    );
    expect(home.mountPath).toBe('/data');
    expect(find(list, 'ConfigMap')[0]?.data).toMatchObject({ BRAIN_HOME: '/data' });
    expect(find(list, 'ConfigMap')[0]?.data).not.toHaveProperty('BRAIN_DATABASE_URL');
    for (const hpa of find(all, 'HorizontalPodAutoscaler') as Json[])
      expect(hpa.spec.scaleTargetRef.name).not.toBe(statefulSet.metadata.name);
  });
});
