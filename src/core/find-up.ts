import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The nearest `relative` path at or above the directory of the module at `moduleUrl`, or null. Shipped
 * files (package.json, models/) sit at the package root, which is a different number of levels above
 * a module run from src/, dist/ or dist-bench/src/.
 */
export function findUp(
  moduleUrl: string,
  relative: string,
  accept: (file: string) => boolean = fs.existsSync,
): string | null {
  let dir = path.dirname(fileURLToPath(moduleUrl));
  for (;;) {
    const candidate = path.join(dir, relative);
    if (accept(candidate)) return candidate;
    const parent = path.dirname(dir);
    if (parent === dir) return null;
    dir = parent;
  }
}
