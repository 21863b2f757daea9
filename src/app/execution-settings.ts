import fs from 'node:fs';
import type { BrainConfig } from '../config/config-schema.js';
import { DEFAULT_EXECUTION_TIMING, type ExecutionSettings } from '../modules/execution/execution-pool.js';
import { DEFAULT_SANDBOX_LIMITS, sandboxProblem } from '../modules/execution/sandbox.js';

/**
 * The workers' settings from config: BRAIN_SANDBOX, the BRAIN_MAX_* limits, BRAIN_EXECUTION_LEASE_MS,
 * and the runs' working directories under BRAIN_EXECUTION_PATH. As root, runs switch to a uid of their
 * own, which cannot enter BRAIN_HOME: their directories are made in the system temp dir instead.
 */
export function executionSettings(config: BrainConfig): ExecutionSettings {
  const mb = 1024 * 1024;
  const asRoot = process.getuid?.() === 0;
  return {
    mode: config.sandbox,
    limits: {
      ...DEFAULT_SANDBOX_LIMITS,
      memoryMb: config.maxMemoryMb,
      wallMs: config.maxExecutionTimeMs,
      cpuSeconds: Math.max(1, Math.ceil(config.maxExecutionTimeMs / 1000)),
      outputBytes: config.maxOutputSizeMb * mb,
      fileBytes: config.maxOutputSizeMb * mb,
    },
    workRoot: asRoot ? undefined : config.executionPath,
    ...DEFAULT_EXECUTION_TIMING,
    leaseMs: config.executionLeaseMs,
  };
}

/**
 * Why this process cannot run code, or null: BRAIN_SANDBOX=none with NODE_ENV=production, or what to
 * install. Probed once (bubblewrap starts a namespace to prove it can), on first use.
 */
export function executionProblem(config: BrainConfig): () => string | null {
  let answer: string | null | undefined;
  return () => {
    if (answer !== undefined) return answer;
    if (config.sandbox === 'none' && config.nodeEnv === 'production')
      answer =
        'BRAIN_SANDBOX=none is refused when NODE_ENV=production: install bubblewrap (apt-get install bubblewrap) and set BRAIN_SANDBOX=bwrap';
    else answer = sandboxProblem(config.sandbox);
    if (answer === null && process.getuid?.() !== 0) {
      // Not root: the working directories go under BRAIN_EXECUTION_PATH, which must be there.
      try {
        fs.mkdirSync(config.executionPath, { recursive: true, mode: 0o700 });
      } catch (error) {
        answer = `BRAIN_EXECUTION_PATH ${config.executionPath} cannot be made: ${(error as Error).message}`;
      }
    }
    return answer;
  };
}
