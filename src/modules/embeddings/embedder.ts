/** The embedding providers Brain ships, chosen with BRAIN_EMBEDDER (`none`: recall runs on text only). */
export const EMBEDDER_PROVIDERS = ['hash', 'use-lite', 'use-lite-static', 'transformers', 'openai'] as const;
export type EmbedderProvider = (typeof EMBEDDER_PROVIDERS)[number];

/**
 * Turns texts into unit-length vectors. Every provider implements this one interface; `model` names the
 * vector space (vectors are stored with it), so vectors of different models are never compared.
 */
export interface Embedder {
  readonly provider: EmbedderProvider;
  /** The model id stored with every vector, e.g. `hash-v1-256` or `openai:text-embedding-3-small`. */
  readonly model: string;
  readonly dimensions: number;
  /**
   * True when a text costs well under a millisecond in this process (hash, static tables): writes embed
   * before they are acknowledged. Otherwise writes are acknowledged once their text is indexed and the
   * background embedding queue catches up.
   */
  readonly inline: boolean;
  /** One vector per text, in order, each of `dimensions` numbers and unit length (or all zero). */
  embed(texts: string[]): Promise<Float32Array[]>;
  /** Why the provider cannot embed right now (an open circuit breaker), or null when it can. */
  unavailable?(): string | null;
  /** Releases what the provider holds (worker threads, sockets). */
  close?(): Promise<void>;
}

/** The settings every provider is created from (see docs/CONFIG.md, BRAIN_EMBEDDING_*). */
export interface EmbedderSettings {
  /** Model name or local directory: transformers (a Hugging Face id or a path), openai (the model id). */
  model?: string;
  /** OpenAI-compatible endpoint, up to and including `/v1`. */
  url?: string;
  apiKey?: string;
  /** Asked of providers that can shorten vectors (OpenAI `dimensions`); checked against every answer. */
  dimensions?: number;
  timeoutMs: number;
  batchSize: number;
  /** Consecutive failures after which the circuit opens (CIRCUIT_BREAKER_MAX_FAILURES). */
  breakerMaxFailures: number;
  /** How long an open circuit stays open before one trial call (CIRCUIT_BREAKER_RESET_TIMEOUT, ms). */
  breakerResetMs: number;
  /** Where downloaded models are kept (BRAIN_HOME/models). */
  modelsDir: string;
  /** Whether a model missing from modelsDir may be fetched from its hub on first use. */
  allowRemoteModels: boolean;
}

/** A zero vector (text made only of stopwords or symbols) has no direction: it is stored as none. */
export function usableVector(vector: Float32Array | undefined): Float32Array | null {
  if (!vector) return null;
  for (let i = 0; i < vector.length; i++) if (vector[i] !== 0) return vector;
  return null;
}

/** Embeds `texts` in consecutive batches of at most `size`, in order. */
export async function inBatches(
  texts: string[],
  size: number,
  embed: (batch: string[]) => Promise<Float32Array[]>,
): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for (let start = 0; start < texts.length; start += Math.max(1, size))
    out.push(...(await embed(texts.slice(start, start + Math.max(1, size)))));
  return out;
}
