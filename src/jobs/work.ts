// What a job runs: the very functions the synchronous endpoints call (the prober, the grader, the
// differentiation operations), with the endpoint's own body check and answer serialiser, so that a
// job's answer is the synchronous endpoint's, byte for byte.

import type { Compute } from '../service/compute.js';
import { SerializedAnswer, type Answer } from '../service/compute.js';
import { toHttpProblem } from '../service/problem.js';
import type { GradeLimits, GradeRequest } from '../grade/types.js';
import type { Prober, ProbeRequest } from '../probe/probe.js';
import type { RequestTable } from '../service/request.js';
import { COMPUTE_ENDPOINTS, type ComputeEndpoint, type JobSpec, type JobSubmission, type JobWork, type RunContext } from './types.js';

/** How an endpoint reads its body and writes its answer (its route's schemas, compiled as the route's are). */
export interface EndpointContract {
  /** The body as the route's validator gives it to the handler; throws the 400 problem it would answer. */
  parse(body: unknown): unknown;
  /** The answer's JSON exactly as the route sends it. */
  serialize(answer: object): string;
}

export interface WorkDependencies {
  prober: Prober;
  compute: Compute;
  gradeLimits: GradeLimits;
  /** The contract of each synchronous endpoint, by its path (`/probe`, `/grade`, `/grad`, ...). */
  contracts: ReadonlyMap<string, EndpointContract>;
  bodyLimit: number;
  /** A probe job's time limit (JOBS_PROBE_MAX_DURATION_MS), from its start. */
  probeMaxDurationMs: number;
}

/** The synchronous endpoint a job stands for. */
export function endpointPath(spec: Pick<JobSpec, 'kind' | 'endpoint'>): string {
  return spec.kind === 'compute' ? `/${spec.endpoint ?? 'grad'}` : `/${spec.kind}`;
}

/** The job that stands for a request to the synchronous endpoint at `path`; undefined when jobs do not run it. */
export function jobSpecFor(path: string, request: unknown): JobSpec | undefined {
  if (path === '/probe') return { kind: 'probe', request };
  if (path === '/grade') return { kind: 'grade', request };
  const endpoint = COMPUTE_ENDPOINTS.find((name) => path === `/${name}`);
  return endpoint === undefined ? undefined : { kind: 'compute', endpoint, request };
}

const decoder = new TextDecoder();

export class EndpointWork implements JobWork {
  constructor(private readonly deps: WorkDependencies) {}

  check(spec: JobSpec): void {
    this.contract(spec).parse(spec.request);
  }

  async run(job: JobSubmission, context: RunContext): Promise<string> {
    const contract = this.contract(job);
    const body = contract.parse(job.request);
    context.signal.throwIfAborted();
    const answer = await this.answer(job, body, context);
    // Work that finished although the job was cancelled meanwhile (it did not look at the signal) answers nothing.
    context.signal.throwIfAborted();
    return answer instanceof SerializedAnswer ? decoder.decode(answer.json) : contract.serialize(answer);
  }

  problemOf(error: unknown): string {
    return JSON.stringify(toHttpProblem(error, { bodyLimit: this.deps.bodyLimit }));
  }

  private contract(spec: Pick<JobSpec, 'kind' | 'endpoint'>): EndpointContract {
    const path = endpointPath(spec);
    const contract = this.deps.contracts.get(path);
    if (contract === undefined) throw new Error(`no endpoint ${path} to run ${spec.kind} jobs`);
    return contract;
  }

  private async answer(job: JobSubmission, body: unknown, context: RunContext): Promise<Answer> {
    const { prober, compute, gradeLimits } = this.deps;
    const { signal, onProgress } = context;
    switch (job.kind) {
      case 'probe': {
        let total = 1;
        const answer = await prober.probe(body as ProbeRequest, {
          signal,
          client: job.client,
          // A job has its own time limit, from its start: long probing is what jobs are for.
          receivedAt: Date.now(),
          duration: { ms: this.deps.probeMaxDurationMs, setting: 'JOBS_PROBE_MAX_DURATION_MS' },
          onProgress: (spent, planned) => {
            total = planned;
            onProgress({ done: Math.min(spent, planned), total: planned, queries: spent });
          },
        });
        onProgress({ done: total, total, queries: answer.queries });
        return answer;
      }
      case 'grade':
        return compute.grade(body as GradeRequest, gradeLimits, { signal });
      case 'compute': {
        const endpoint: ComputeEndpoint = job.endpoint ?? 'grad';
        return compute.respondNow(endpoint, body as RequestTable[typeof endpoint], { signal });
      }
    }
  }
}
