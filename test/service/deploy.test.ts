// The deployment examples parse, probe the real health routes and name real settings.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { configSchema } from '../../src/service/config.js';

const read = (name: string) => readFileSync(new URL(`../../deploy/${name}`, import.meta.url), 'utf8');

describe('deploy/', () => {
  it('kubernetes.yaml: probes /healthz and /readyz, and sets only settings the service reads', () => {
    const docs = parseAllDocuments(read('kubernetes.yaml')).map((d) => d.toJS());
    const deployment = docs.find((d) => d.kind === 'Deployment');
    const container = deployment.spec.template.spec.containers[0];
    expect(container.livenessProbe.httpGet.path).toBe('/healthz');
    expect(container.readinessProbe.httpGet.path).toBe('/readyz');
    for (const { name } of container.env) expect(Object.keys(configSchema.shape)).toContain(name);
    const grace = Number(container.env.find((e: { name: string }) => e.name === 'SHUTDOWN_GRACE_MS').value);
    expect(deployment.spec.template.spec.terminationGracePeriodSeconds * 1000).toBeGreaterThan(grace);
  });

  it('compose.yaml: replicas that set only settings the service reads, share one Redis, and sit behind the proxy', () => {
    const compose = parseAllDocuments(read('compose.yaml'))[0]!.toJS();
    const replicas = Object.entries(compose.services as Record<string, { build?: string; environment: Record<string, string> }>).filter(([, s]) => s.build === '..');
    expect(replicas.length).toBeGreaterThanOrEqual(2);
    for (const [, service] of replicas) {
      for (const name of Object.keys(service.environment)) expect(Object.keys(configSchema.shape)).toContain(name);
      expect(service.environment.REDIS_URL).toBe('redis://redis:6379');
    }
    expect(compose.services.redis.image).toMatch(/^redis:/);
    const upstreams = [...read('nginx.conf').matchAll(/^\s*server (\S+):3000;/gm)].map((m) => m[1]);
    expect(upstreams.sort()).toEqual(replicas.map(([name]) => name).sort());
  });
});
