// What a request body can be refused for, as plain data that crosses threads: shared by the JSON
// (src/service/body-decode.ts) and MessagePack (src/service/msgpack-decode.ts) readers.

/** The problems a body can have: what src/service/body.ts answers (as HttpProblem), with the same codes inline and on a worker. */
export type BodyProblemCode = 'invalid_json' | 'invalid_msgpack' | 'validation_error' | 'limit_exceeded';

/** A body the service refuses: its status, code, detail and extra members, as plain data that crosses threads. */
export class BodyProblem extends Error {
  constructor(
    readonly status: number,
    readonly code: BodyProblemCode,
    readonly detail: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(detail);
    this.name = 'BodyProblem';
  }
}

/** Where, in a parsed JSON document, a key that could reach an object's prototype sits. */
export interface ForbiddenKey {
  path: string[];
  key: '__proto__' | 'constructor.prototype';
}

