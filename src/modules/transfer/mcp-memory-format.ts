import { z } from 'zod';
import { isWellFormedText, MALFORMED_TEXT_MESSAGE } from '../../core/validation.js';
import { TRANSFER_LIMITS } from './export-format.js';
import {
  checkedFields,
  derivedMemoryId,
  type ImportedMemory,
  type ImportTarget,
  tagOf,
} from './imported-memory.js';
import { type Line, lineError, parseJsonLine, readLines } from './json-lines.js';

/**
 * The official MCP memory server's file (`@modelcontextprotocol/server-memory`, MEMORY_FILE_PATH,
 * `memory.jsonl`): one JSON object a line, `{"type":"entity","name","entityType","observations":[…]}`
 * or `{"type":"relation","from","to","relationType"}`, as its saveGraph writes them.
 *
 * Until Brain has a knowledge graph, each observation becomes one memory, `<entity>: <observation>`
 * (self-contained, so recall finds it by the entity's name), tagged `mcp-memory` and `entity:<name>`,
 * with `{source, entity, entity_type}` in its metadata; an entity without observations becomes
 * `<entity> is a <type>`; each relation becomes `<from> <relationType> <to>`, tagged `mcp-relation`,
 * with `{source, relation: {from, type, to}}` in its metadata, for the graph to take over later.
 */
export const MCP_SOURCE = 'mcp-memory';

const name = z
  .string({ error: 'must be a string' })
  .refine((s) => s.trim().length > 0, { message: 'must not be empty' })
  .refine(isWellFormedText, { message: MALFORMED_TEXT_MESSAGE });

const entitySchema = z.object({
  type: z.literal('entity'),
  name,
  entityType: name,
  observations: z.array(z.string({ error: 'must be a string' }), { error: 'must be an array of strings' }),
});

const relationSchema = z.object({
  type: z.literal('relation'),
  from: name,
  to: name,
  relationType: name,
});

/** What reading the file found, besides the memories. */
export interface McpMemorySummary {
  entities: number;
  relations: number;
  observations: number;
  /** Lines of another `type` (the server ignores them too), by type. */
  skipped: Record<string, number>;
}

/** A line's memories, or the type of a line that holds none. */
type LineResult =
  | { type: 'entity' | 'relation'; observations: number; memories: ImportedMemory[] }
  | { type: string; memories: null };

function memoriesOfLine(line: Line, target: ImportTarget): LineResult {
  const value = parseJsonLine(line) as { type?: unknown } | null;
  const type = value !== null && typeof value === 'object' ? value.type : undefined;
  if (type !== 'entity' && type !== 'relation')
    return { type: typeof type === 'string' ? type : '(no type)', memories: null };
  const parsed = type === 'entity' ? entitySchema.safeParse(value) : relationSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw lineError(line.number, issue?.path.map(String).join('.') || type, issue?.message ?? 'is not valid');
  }
  const tenant = target.tenant ?? target.defaultTenant;
  const base = { tenant_id: tenant, project: target.project, type: 'fact' };
  const times = { created_at: target.now, updated_at: target.now, expires_at: null };
  const fail = (field: string, message: string): never => {
    throw lineError(line.number, field, message);
  };
  const scope = [MCP_SOURCE, tenant, target.project ?? ''];
  if (parsed.data.type === 'relation') {
    const r = parsed.data;
    const fields = checkedFields(
      {
        content: `${r.from} ${r.relationType} ${r.to}`,
        tags: [MCP_SOURCE, 'mcp-relation'],
        metadata: { source: MCP_SOURCE, relation: { from: r.from, type: r.relationType, to: r.to } },
      },
      fail,
      (f) => (f === 'content' ? 'from' : f),
    );
    const id = derivedMemoryId([...scope, 'relation', r.from, r.relationType, r.to], null);
    return { type: 'relation', observations: 0, memories: [{ ...base, ...times, ...fields, id }] };
  }
  const e = parsed.data;
  const tags = [MCP_SOURCE, tagOf('entity', e.name)].filter((t): t is string => t !== null);
  const metadata = { source: MCP_SOURCE, entity: e.name, entity_type: e.entityType };
  if (e.observations.length === 0) {
    const fields = checkedFields({ content: `${e.name} is a ${e.entityType}`, tags, metadata }, fail, (f) =>
      f === 'content' ? 'name' : f,
    );
    const id = derivedMemoryId([...scope, 'entity', e.name, e.entityType], null);
    return { type: 'entity', observations: 0, memories: [{ ...base, ...times, ...fields, id }] };
  }
  const memories = e.observations.map((observation, i) => {
    const fields = checkedFields({ content: `${e.name}: ${observation}`, tags, metadata }, fail, (f) =>
      f === 'content' ? `observations.${i}` : f,
    );
    const id = derivedMemoryId([...scope, 'observation', e.name, observation], null);
    return { ...base, ...times, ...fields, id };
  });
  return { type: 'entity', observations: e.observations.length, memories };
}

/**
 * Reads an MCP memory file, validating every line, and hands each chunk's memories to `onMemories`.
 * Throws INVALID_INPUT naming the line and field of the first bad line.
 */
export async function readMcpMemory(
  source: AsyncIterable<Buffer | string> | Iterable<Buffer | string>,
  target: ImportTarget,
  onMemories: (memories: ImportedMemory[]) => Promise<void> | void,
): Promise<McpMemorySummary> {
  const summary: McpMemorySummary = { entities: 0, relations: 0, observations: 0, skipped: {} };
  for await (const lines of readLines(source, TRANSFER_LIMITS.lineBytes)) {
    const memories: ImportedMemory[] = [];
    for (const line of lines) {
      if (line.text.trim() === '') continue;
      const result = memoriesOfLine(line, target);
      if (result.memories === null) {
        summary.skipped[result.type] = (summary.skipped[result.type] ?? 0) + 1;
        continue;
      }
      if (result.type === 'relation') summary.relations++;
      else summary.entities++;
      summary.observations += 'observations' in result ? result.observations : 0;
      memories.push(...result.memories);
    }
    if (memories.length > 0) await onMemories(memories);
  }
  return summary;
}
