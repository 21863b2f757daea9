import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { DERIVED_PATHS, SETTINGS, type SettingSpec, settingSchema } from '../src/config/config-schema.js';

/** The repository's `.env.example`, which {@link renderEnvExample} writes (test/deploy-env-example.test.ts). */
export const ENV_EXAMPLE_PATH = path.resolve(import.meta.dirname, '../.env.example');

const CONFIG_DOC = path.resolve(import.meta.dirname, '../docs/CONFIG.md');

const HEADER = `# Every Brain setting with its default: a commented line is the default, so this file as it is changes
# nothing. Uncomment and edit what you change. docs/CONFIG.md explains each setting in full.
#
# Where it goes: $BRAIN_HOME/.env (default ~/.brain/.env; /var/lib/brain/.env for the systemd units),
# deploy/brain.env for deploy/compose.yaml, or a Kubernetes ConfigMap/Secret (deploy/kubernetes/).
# Secrets (tokens, URLs with passwords) belong in a file only its owner can read: chmod 600.
#
# Generated from src/config/config-schema.ts and docs/CONFIG.md; do not edit by hand. To regenerate:
#   npx vitest run test/deploy-env-example.test.ts -u
`;

/** A row of a settings table in docs/CONFIG.md: its section heading and its "what" cell. */
interface DocRow {
  section: string;
  what: string;
}

/** Splits a Markdown table row on its unescaped pipes. */
function cells(line: string): string[] {
  return line
    .trim()
    .replace(/^\|/, '')
    .replace(/\|$/, '')
    .split(/(?<!\\)\|/)
    .map((cell) => cell.trim().replaceAll('\\|', '|'));
}

/** Each setting's section and description, read from docs/CONFIG.md's tables (env name in the first column). */
function docRows(): Map<string, DocRow> {
  const rows = new Map<string, DocRow>();
  let section = 'Other';
  let whatColumn = -1;
  for (const line of fs.readFileSync(CONFIG_DOC, 'utf8').split('\n')) {
    const heading = /^## (.+)$/.exec(line);
    if (heading) {
      section = heading[1] as string;
      whatColumn = -1;
      continue;
    }
    if (!line.startsWith('|')) continue;
    const row = cells(line);
    if (row[0] === 'env') {
      whatColumn = row.indexOf('what');
      continue;
    }
    const env = /^`([A-Z][A-Z0-9_]*)`$/.exec(row[0] ?? '');
    if (env && whatColumn >= 0) rows.set(env[1] as string, { section, what: row[whatColumn] ?? '' });
  }
  return rows;
}

/** Word-wraps `text` into comment lines of at most `width` characters. */
function commentLines(text: string, width = 110): string[] {
  const lines: string[] = [];
  let current = '#';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (current.length + 1 + word.length > width && current !== '#') {
      lines.push(current);
      current = '#';
    }
    current += ` ${word}`;
  }
  if (current !== '#') lines.push(current);
  return lines;
}

/** A default as environment text: lists comma-separated, values with spaces or `#` double-quoted. */
function envText(value: unknown): string {
  const text = Array.isArray(value) ? value.join(',') : value === undefined ? '' : String(value);
  return /[\s#"'$\\]/.test(text) ? JSON.stringify(text) : text;
}

/** The schema's default of a setting, or undefined when it has none. */
export function settingDefault(spec: SettingSpec): unknown {
  const parsed = settingSchema(spec.key).safeParse(undefined);
  return parsed.success ? parsed.data : undefined;
}

/** What the comment says of the type and limits, from the schema (JSON Schema's view of it). */
function describeType(spec: SettingSpec): string {
  let json: Record<string, unknown> = {};
  try {
    json = z.toJSONSchema(settingSchema(spec.key), { io: 'input', unrepresentable: 'any' }) as Record<
      string,
      unknown
    >;
  } catch {
    // A schema JSON Schema cannot express: the kind alone is said.
  }
  const parts = [spec.kind === 'int' ? 'integer' : spec.kind === 'bool' ? 'true or false' : spec.kind];
  if (typeof json.minimum === 'number' && typeof json.maximum === 'number') {
    parts.push(`${json.minimum} to ${json.maximum}`);
  }
  if (Array.isArray(json.enum)) parts.push(`one of ${json.enum.join(', ')}`);
  return parts.join(', ');
}

/** What the comment says the default is, for a setting whose line is left empty. */
function describeUnset(spec: SettingSpec): string {
  if (spec.key === 'home') return '~/.brain';
  const derived = (DERIVED_PATHS as Record<string, string>)[spec.key];
  if (derived) return `$BRAIN_HOME/${derived}`;
  return 'unset';
}

/** The text of `.env.example`: every setting of SETTINGS, grouped as docs/CONFIG.md groups them. */
export function renderEnvExample(): string {
  const docs = docRows();
  const sections = new Map<string, string[]>();
  for (const spec of SETTINGS) {
    const doc = docs.get(spec.env);
    const value = settingDefault(spec);
    const shown = value === undefined || (Array.isArray(value) && value.length === 0) ? undefined : value;
    const lines = [
      ...commentLines(doc?.what ?? ''),
      `# ${describeType(spec)}; default ${
        shown !== undefined ? envText(shown) : Array.isArray(value) ? 'empty' : describeUnset(spec)
      }`,
      `#${spec.env}=${envText(shown)}`,
    ];
    const section = doc?.section ?? 'Other';
    sections.set(section, [...(sections.get(section) ?? []), lines.join('\n')]);
  }
  const body = [...sections].map(([name, entries]) => `# ===== ${name} =====\n\n${entries.join('\n\n')}`);
  return `${HEADER}\n${body.join('\n\n')}\n`;
}
