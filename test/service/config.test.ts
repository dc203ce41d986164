import { describe, expect, it } from 'vitest';
import { ConfigError, defaultConfig, loadConfig } from '../../src/service/config.js';

describe('loadConfig', () => {
  it('has the documented defaults', () => {
    expect(loadConfig({})).toMatchObject({
      PORT: 3000,
      HOST: '0.0.0.0',
      LOG_LEVEL: 'info',
      BODY_LIMIT: 50_331_648,
      BODY_MAX_ITEMS: 524_288,
      SHUTDOWN_GRACE_MS: 10_000,
      MAX_EXPR_LENGTH: 100_000,
      MAX_NODES: 100_000,
      MAX_TENSOR_ELEMENTS: 4_000_000,
      MAX_LIVE_ELEMENTS: 64_000_000,
      MAX_FLOPS: 20e9,
      MAX_JACOBIAN_ELEMENTS: 1_000_000,
      MAX_ANSWER_ELEMENTS: 1_000_000,
      MAX_POINTS: 1000,
      MAX_TRACE_ELEMENTS: 200_000,
      INLINE_FLOPS: 2e6,
      WORK_TIMEOUT_MS: 60_000,
      MAX_QUEUE: 64,
      CACHE_SIZE: 256,
      RATE_LIMIT_MAX: 0,
      RATE_LIMIT_WINDOW_MS: 60_000,
      MAX_EVENT_LOOP_DELAY_MS: 1000,
      REQUEST_TIMEOUT_MS: 30_000,
      HEADERS_TIMEOUT_MS: 10_000,
      KEEP_ALIVE_TIMEOUT_MS: 72_000,
      API_KEYS: [],
      METRICS_API_KEYS: [],
      METRICS_PORT: 0,
      TRUST_PROXY: false,
      PROBE_ALLOWED_ORIGINS: [],
      PROBE_MAX_CONCURRENCY: 8,
      PROBE_MAX_OUTGOING: 64,
      PROBE_MAX_BUDGET: 10_000,
      PROBE_MAX_ELEMENTS: 50_000_000,
      PROBE_MAX_RESPONSE_BYTES: 1_048_576,
      PROBE_DEFAULT_TIMEOUT_MS: 5000,
      PROBE_MAX_DURATION_MS: 120_000,
    });
    expect(loadConfig({}).WORKERS).toBeGreaterThanOrEqual(1);
  });

  it('coerces the strings an environment holds', () => {
    const config = loadConfig({
      PORT: '8080',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'DEBUG',
      BODY_LIMIT: '2048',
      SHUTDOWN_GRACE_MS: '0',
    });
    expect(config).toMatchObject({ PORT: 8080, HOST: '127.0.0.1', LOG_LEVEL: 'debug', BODY_LIMIT: 2048, SHUTDOWN_GRACE_MS: 0 });
    expect(loadConfig({ MAX_FLOPS: '1e9', WORKERS: '0' })).toMatchObject({ MAX_FLOPS: 1e9, WORKERS: 0 });
    expect(loadConfig({ TRUST_PROXY: 'true' }).TRUST_PROXY).toBe(true);
    expect(loadConfig({ TRUST_PROXY: '2' }).TRUST_PROXY).toBe(2);
    expect(loadConfig({ TRUST_PROXY: '10.0.0.0/8, 127.0.0.1' }).TRUST_PROXY).toEqual(['10.0.0.0/8', '127.0.0.1']);
    expect(() => loadConfig({ TRUST_PROXY: 'proxy.example' })).toThrow(/TRUST_PROXY/);
  });

  it('reads API_KEYS and METRICS_API_KEYS as id:sha256 entries, refusing anything else', () => {
    const hash = 'a'.repeat(64);
    expect(loadConfig({ API_KEYS: ` ci:${hash} , alice:${'B'.repeat(64)},` }).API_KEYS).toEqual([
      { id: 'ci', sha256: hash },
      { id: 'alice', sha256: 'b'.repeat(64) },
    ]);
    expect(loadConfig({ METRICS_API_KEYS: `prometheus:${hash}` }).METRICS_API_KEYS).toEqual([{ id: 'prometheus', sha256: hash }]);
    // A key in plain text, a short hash, a missing id, a repeated id.
    for (const bad of ['s3cr3t-key', `ci:${'a'.repeat(63)}`, `:${hash}`, `ci:${hash},ci:${hash}`]) {
      expect(() => loadConfig({ API_KEYS: bad }), bad).toThrow(/API_KEYS must be comma-separated id:sha256 entries/);
    }
  });

  it('treats an empty variable as unset and ignores unrelated ones', () => {
    expect(loadConfig({ PORT: '', PATH: '/usr/bin' }).PORT).toBe(3000);
  });

  it.each([
    ['PORT', 'abc'],
    ['PORT', '70000'],
    ['PORT', '80.5'],
    ['LOG_LEVEL', 'loud'],
    ['BODY_LIMIT', '0'],
    ['BODY_LIMIT', '1mb'],
    ['SHUTDOWN_GRACE_MS', '-1'],
  ])('rejects %s=%s with a message naming the variable and the value', (name, value) => {
    const load = () => loadConfig({ [name]: value });
    expect(load).toThrow(ConfigError);
    expect(load).toThrow(new RegExp(`${name} must be .*, got "${value}"`));
  });

  it('names every bad variable at once', () => {
    expect(() => loadConfig({ PORT: 'x', LOG_LEVEL: 'y' })).toThrow(/PORT .*; LOG_LEVEL /);
  });
});

describe('defaultConfig', () => {
  it('is the configuration of an empty environment, with overrides applied', () => {
    expect(defaultConfig()).toEqual(loadConfig({}));
    expect(defaultConfig({ BODY_LIMIT: 10 })).toEqual({ ...loadConfig({}), BODY_LIMIT: 10 });
  });

  it('validates overrides too', () => {
    expect(() => defaultConfig({ PORT: -1 })).toThrow(/PORT/);
  });
});
