import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { BrainConfig } from '../config/config-schema.js';
import { invalidInput } from '../core/errors.js';
import { parseLocomo } from '../modules/eval/locomo-data.js';
import { type EvalProgress, type EvalReport, runLocomoEval } from '../modules/eval/locomo-eval.js';
import { cliLogLevel, createAppLogger } from './app-logger.js';
import { buildBrain } from './build-brain.js';

export interface EvalRunOptions {
  /** LoCoMo-format JSON file, read in place. */
  data: string;
  ks: number[];
  /** Another embedder than the configured one (BRAIN_EMBEDDER values). */
  embedder?: BrainConfig['embedder'];
  onProgress?: (progress: EvalProgress) => void;
}

function readData(file: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw invalidInput('data', `cannot read ${file}${code ? ` (${code})` : ''}`);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw invalidInput('data', `${file} is not JSON: ${(error as Error).message}`);
  }
}

/**
 * `brain eval`: stores the data in a new database in a temporary directory (never the user's), with the
 * configured embedder and search settings, runs the evaluation, and removes the directory.
 */
export async function runEval(config: BrainConfig, options: EvalRunOptions): Promise<EvalReport> {
  const conversations = parseLocomo(readData(options.data));
  if (conversations.every((c) => c.questions.length === 0))
    throw invalidInput('data', `${options.data} has no question whose evidence names a turn`);
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'brain-eval-'));
  const logger = createAppLogger({
    level: cliLogLevel(config.logLevel),
    stream: 'stderr',
    logPath: config.logPath,
  });
  try {
    const brain = await buildBrain(
      {
        ...config,
        home,
        dbPath: path.join(home, 'brain.db'),
        embedder: options.embedder ?? config.embedder,
      },
      { logger, migrate: true },
    );
    try {
      return await runLocomoEval(brain.services.memory, conversations, {
        ks: options.ks,
        onProgress: options.onProgress,
        settle: () => brain.settle(),
      });
    } finally {
      await brain.close();
    }
  } finally {
    fs.rmSync(home, { recursive: true, force: true });
  }
}
