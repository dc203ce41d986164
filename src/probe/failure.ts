// How a probe fails once it has started: because of its target, its time limit, or a limit met on
// the way. The prober turns it into a 502 `probe_target_error`, a 504 `probe_timeout` or a 422
// `limit_exceeded` problem that says how many queries were spent.

export type FailureKind = 'target_error' | 'timeout' | 'limit';

export class ProbeFailure extends Error {
  constructor(
    readonly kind: FailureKind,
    readonly detail: string,
  ) {
    super(detail);
    this.name = 'ProbeFailure';
  }
}
