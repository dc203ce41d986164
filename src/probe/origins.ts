// The operator's allow-list of probe targets (PROBE_ALLOWED_ORIGINS), as normalised origins.

export const SCHEMES = new Set(['http:', 'https:']);

/**
 * Parses allow-list entries to origins as the WHATWG URL parser normalises them (so
 * `http://0x7f000001:8081` is `http://127.0.0.1:8081`). Throws an Error naming a bad entry: each
 * must be an http(s) origin with nothing after it but an optional `/`.
 */
export function parseAllowedOrigins(entries: readonly string[]): string[] {
  return entries.map((entry) => {
    let url: URL;
    try {
      url = new URL(entry);
    } catch {
      throw new Error(`"${entry}" is not a URL`);
    }
    if (!SCHEMES.has(url.protocol)) throw new Error(`"${entry}" is not an http or https origin`);
    if (url.username !== '' || url.password !== '' || url.pathname !== '/' || url.search !== '' || url.hash !== '') {
      throw new Error(`"${entry}" is more than an origin (scheme://host:port)`);
    }
    return url.origin;
  });
}
