/** Every tool Brain's MCP server registers, sorted: what the unit and end-to-end MCP tests expect to list. */
export const MCP_TOOL_NAMES = [
  'end_session',
  'execute',
  'forget',
  'get_execution',
  'get_memory',
  'init',
  'list_episodes',
  'list_memories',
  'memory_history',
  'recall',
  'record_episode',
  'remember',
  'update_memory',
];
