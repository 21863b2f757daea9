import type { Logger } from '../../core/logger.js';
import type { Embedder, EmbedderProvider, EmbedderSettings } from './embedder.js';
import { createHashEmbedder } from './hash-embedder.js';

/** What the configured provider gave: an embedder, or why there is none (recall then says so). */
export type EmbedderChoice =
  | { embedder: Embedder; problem?: undefined }
  | { embedder: null; problem: string };

/**
 * Creates the configured provider. Providers with heavy or optional dependencies are imported only when
 * chosen. A provider that cannot load (a missing package or model, a bad table) is never a crash: the
 * reason is returned and logged, and Brain runs on text until it loads.
 */
export async function createEmbedder(
  provider: EmbedderProvider,
  settings: EmbedderSettings,
  logger: Logger,
): Promise<EmbedderChoice> {
  try {
    switch (provider) {
      case 'hash':
        return { embedder: createHashEmbedder(256) };
      case 'use-lite-static': {
        const { createStaticEmbedder } = await import('./static-embedder.js');
        return { embedder: await createStaticEmbedder(settings, logger) };
      }
      case 'use-lite': {
        const { createUseLiteEmbedder } = await import('./use-lite-embedder.js');
        return { embedder: await createUseLiteEmbedder(settings, logger) };
      }
      case 'transformers': {
        const { createTransformersEmbedder } = await import('./transformers-embedder.js');
        return { embedder: await createTransformersEmbedder(settings, logger) };
      }
      case 'openai': {
        const { createOpenAiEmbedder } = await import('./openai-embedder.js');
        return { embedder: createOpenAiEmbedder(settings, logger) };
      }
    }
  } catch (error) {
    const problem = `embedder ${provider} could not be loaded: ${error instanceof Error ? error.message : String(error)}`;
    logger.error(
      { provider },
      `${problem}; recall runs on text until it loads, and new memories queue their vectors`,
    );
    return { embedder: null, problem };
  }
}
