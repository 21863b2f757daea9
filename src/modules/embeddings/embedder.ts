/**
 * Turns texts into unit-length vectors. Every provider (the built-in hash embedder now, semantic models
 * later) implements this one interface; `model` names the vector space, so vectors of different models
 * are never compared.
 */
export interface Embedder {
  readonly model: string;
  readonly dimensions: number;
  embed(texts: string[]): Promise<Float32Array[]>;
}
