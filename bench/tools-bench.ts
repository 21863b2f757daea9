/**
 * `npm run bench -- tools`: how many bytes of tool definitions a model reads from each server, per tool
 * (name, description and input schema as `tools/list` returns them), Brain beside the official MCP
 * memory server. Every byte is paid for in every conversation a client has with the server loaded.
 */
import { benchEnv, benchHome, removeHome } from './bench-brain.js';
import { BRAIN_BIN, connect, PEER_BIN } from './mcp-bench.js';
import { type Figure, figure, formatGrid, formatTable } from './stats.js';

/** The budget: what a model reads of one Brain tool. */
const TARGET_BYTES_PER_TOOL = 1200;

interface ToolSizes {
  /** Tool name → bytes of {name, description, inputSchema} as compact JSON. */
  sizes: Map<string, number>;
  total: number;
}

async function toolSizes(command: string, args: string[], env: Record<string, string>): Promise<ToolSizes> {
  const { client } = await connect(command, args, env);
  try {
    const { tools } = await client.listTools();
    const sizes = new Map<string, number>();
    for (const tool of tools) {
      const read = { name: tool.name, description: tool.description, inputSchema: tool.inputSchema };
      sizes.set(tool.name, Buffer.byteLength(JSON.stringify(read)));
    }
    return { sizes, total: [...sizes.values()].reduce((a, b) => a + b, 0) };
  } finally {
    await client.close();
  }
}

export async function printToolsBench(): Promise<Figure[]> {
  const home = benchHome('tools');
  try {
    const brain = await toolSizes(process.execPath, [BRAIN_BIN, 'mcp'], benchEnv(home));
    const peer = await toolSizes(process.execPath, [PEER_BIN], { MEMORY_FILE_PATH: `${home}/peer.jsonl` });
    const rows = [
      ...[...brain.sizes].map(([name, bytes]) => [`brain ${name}`, String(bytes)]),
      ['brain total', `${brain.total} (${brain.sizes.size} tools)`],
      ...[...peer.sizes].map(([name, bytes]) => [`server-memory ${name}`, String(bytes)]),
      ['server-memory total', `${peer.total} (${peer.sizes.size} tools)`],
    ];
    console.log(
      formatGrid(
        'tool definitions a model reads (name + description + input schema)',
        ['tool', 'bytes'],
        rows,
      ),
    );
    const largest = Math.max(...brain.sizes.values());
    const figures = [
      figure('brain bytes per tool (mean)', brain.total / brain.sizes.size, 'B', {
        op: '<=',
        value: TARGET_BYTES_PER_TOOL,
      }),
      figure('brain largest tool', largest, 'B'),
      figure('server-memory bytes per tool (mean)', peer.total / peer.sizes.size, 'B'),
    ];
    console.log(formatTable('tool definition size', figures));
    return figures;
  } finally {
    removeHome(home);
  }
}
