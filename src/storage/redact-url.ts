/** A database or Redis URL as logs and errors may show it: without its password. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '****';
    return parsed.toString();
  } catch {
    return 'an unparsable URL';
  }
}
