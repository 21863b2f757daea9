/**
 * The memory module's result types, for code that needs only the types (the storage drivers, the store
 * port). They are inferred from the output schemas in memory-output.ts, where each shape is written.
 */
export type {
  ForgetResult,
  HistoryResult,
  ListResult,
  Memory,
  RecallHit,
  RecallMode,
  RecallResult,
  RecallSignals,
  RememberResult,
  StorageTier,
  TextOnlyReason,
} from './memory-output.js';
