import type { z } from 'zod';
import { BrainError, type FieldIssue } from './errors.js';

/**
 * Parses a boundary input with its schema. On failure throws one INVALID_INPUT BrainError whose message
 * names every bad field and its limit, e.g. `content: must be at most 65536 bytes (64 KiB) of UTF-8`.
 */
export function parseInput<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issues: FieldIssue[] = result.error.issues.map((issue) => ({
    field: issue.path.length > 0 ? issue.path.map(String).join('.') : '(input)',
    message:
      issue.code === 'unrecognized_keys' ? `unknown field(s): ${issue.keys.join(', ')}` : issue.message,
  }));
  const message = issues.map((i) => `${i.field}: ${i.message}`).join('; ');
  throw new BrainError('INVALID_INPUT', `invalid input: ${message}`, { issues });
}

/** A lone UTF-16 surrogate (a half of a pair): valid in a JS string, impossible in UTF-8. */
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * Whether text can be stored and read back unchanged. SQLite and every wire format store UTF-8, which
 * has no lone surrogates: written anyway, they come back as U+FFFD. Brain refuses such text instead.
 */
export function isWellFormedText(text: string): boolean {
  return !LONE_SURROGATE.test(text);
}

export const MALFORMED_TEXT_MESSAGE =
  'must be valid Unicode: it holds a lone surrogate (\\ud800-\\udfff), which cannot be stored unchanged';

/** The key JSON may carry as an own property but a JS object cannot keep: assigning it sets the prototype. */
export const PROTO_KEY = '__proto__';

export interface JsonShapeLimits {
  /** Most levels of nested objects and arrays; the value itself is level 1. Default: no limit. */
  maxDepth?: number;
  /** Also refuse text with a lone surrogate in keys and strings. Default true. */
  wellFormedText?: boolean;
}

/** One problem found by {@link inspectJson}: where (path below the value) and what. */
export interface JsonShapeIssue {
  path: (string | number)[];
  message: string;
}

/**
 * Walks a parsed JSON value without recursion (a 10,000-level value must not overflow the stack) and
 * reports the first problem: nesting deeper than the limit, an own `__proto__` key (which every copy of
 * the object would silently drop), or text with a lone surrogate in a key or a string. With
 * `{ wellFormedText: false }` and no depth limit it finds only `__proto__` keys: what a transport checks
 * in a whole message before a schema copies (and so silently drops) them.
 */
export function inspectJson(value: unknown, limits: JsonShapeLimits = {}): JsonShapeIssue | null {
  const maxDepth = limits.maxDepth ?? Number.POSITIVE_INFINITY;
  const checkText = limits.wellFormedText ?? true;
  // Each node links to its parent instead of carrying its path: every stdio message and every metadata
  // value is walked, and a path is needed only for the one problem reported.
  const stack: JsonNode[] = [{ value, depth: 1, key: null, parent: null }];
  for (let node = stack.pop(); node !== undefined; node = stack.pop()) {
    const current = node.value;
    if (typeof current === 'string') {
      if (checkText && !isWellFormedText(current))
        return { path: pathOf(node), message: MALFORMED_TEXT_MESSAGE };
      continue;
    }
    if (typeof current !== 'object' || current === null) continue;
    if (node.depth > maxDepth) {
      return { path: pathOf(node), message: `must nest at most ${maxDepth} levels of objects and arrays` };
    }
    const depth = node.depth + 1;
    if (Array.isArray(current)) {
      for (let i = 0; i < current.length; i++) stack.push({ value: current[i], depth, key: i, parent: node });
      continue;
    }
    for (const key of Object.keys(current)) {
      if (key === PROTO_KEY)
        return { path: [...pathOf(node), key], message: 'the key __proto__ is not allowed' };
      if (checkText && !isWellFormedText(key)) {
        return { path: [...pathOf(node), key], message: `key ${MALFORMED_TEXT_MESSAGE}` };
      }
      stack.push({ value: (current as Record<string, unknown>)[key], depth, key, parent: node });
    }
  }
  return null;
}

/** A value met by {@link inspectJson}, with where it sits. */
interface JsonNode {
  value: unknown;
  depth: number;
  /** Its key or index in its parent; null for the value inspected. */
  key: string | number | null;
  parent: JsonNode | null;
}

function pathOf(node: JsonNode): (string | number)[] {
  const path: (string | number)[] = [];
  for (let at: JsonNode | null = node; at !== null && at.key !== null; at = at.parent) path.push(at.key);
  return path.reverse();
}
