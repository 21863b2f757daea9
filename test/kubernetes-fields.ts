import path from 'node:path';
import ts from 'typescript';

/** A Kubernetes object as a manifest has it: at least its kind and apiVersion. */
export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata?: { name?: string };
  [field: string]: unknown;
}

/** Where kubernetes-models keeps an apiVersion's models: `v1` is the core group, `apps/v1` a named one. */
export const modelsModule = (apiVersion: string) => `kubernetes-models/${apiVersion}`;

/**
 * What TypeScript finds wrong in each manifest (an unknown field, a wrong type), by manifest name. kubernetes-models' validate() checks
 * types, enums, formats and required fields against the API's OpenAPI schemas, but those schemas allow
 * any extra field (the API server rejects one only under strict field validation), so a typo'd optional
 * field (`readynessProbe`) passes it. The same package's TypeScript interfaces list every field: each
 * manifest is type-checked as an object literal of its kind's interface, and TypeScript's excess-property
 * check names an unknown field (the first of each object).
 */
export function fieldProblems(manifests: { name: string; manifest: Manifest }[]): Map<string, string[]> {
  // A file that is never written: the compiler host below serves it, beside this one so that
  // kubernetes-models resolves from the repository's node_modules.
  const file = path.resolve(import.meta.dirname, '__kubernetes_manifests__.ts');
  const lines: string[] = [];
  const lineOwner: string[] = [];
  manifests.forEach(({ name, manifest }, index) => {
    const type = `K${index}`;
    lines.push(
      `import type { I${manifest.kind} as ${type} } from '${modelsModule(manifest.apiVersion)}/${manifest.kind}';`,
    );
    lineOwner.push(name);
  });
  manifests.forEach(({ name, manifest }, index) => {
    lines.push(`export const m${index}: K${index} = ${JSON.stringify(manifest)};`);
    lineOwner.push(name);
  });
  const text = `${lines.join('\n')}\n`;

  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const isOurs = (name: string) => path.resolve(name) === file;
  const { fileExists, readFile, getSourceFile } = host;
  host.fileExists = (name) => isOurs(name) || fileExists.call(host, name);
  host.readFile = (name) => (isOurs(name) ? text : readFile.call(host, name));
  host.getSourceFile = (name, language, ...rest) =>
    isOurs(name)
      ? ts.createSourceFile(name, text, language)
      : getSourceFile.call(host, name, language, ...rest);

  const program = ts.createProgram([file], options, host);
  const source = program.getSourceFile(file) as ts.SourceFile;
  const problems = new Map<string, string[]>();
  for (const diagnostic of ts.getPreEmitDiagnostics(program)) {
    const line =
      diagnostic.file && diagnostic.start !== undefined
        ? source.getLineAndCharacterOfPosition(diagnostic.start).line
        : -1;
    const owner = lineOwner[line] ?? '(the check itself)';
    const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, ' ');
    problems.set(owner, [...(problems.get(owner) ?? []), message]);
  }
  return problems;
}
