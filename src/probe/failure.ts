// How a probe fails because of its target. The prober turns it into a 502 `probe_target_error` or
// a 504 `probe_timeout` problem that says how many queries were spent.

export type FailureKind = 'target_error' | 'timeout';

export class ProbeFailure extends Error {
  constructor(
    readonly kind: FailureKind,
    readonly detail: string,
  ) {
    super(detail);
    this.name = 'ProbeFailure';
  }
}
