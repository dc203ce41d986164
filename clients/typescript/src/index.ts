// @adjoint/client: a typed client of the Adjoint service (docs/clients.md).

export { BASE64_THRESHOLD, encodeBase64, encodeBinary, encodeValue, jsonNumber, Tensor, toNested, toNumber, toTensor } from './arrays.js';
export type { EncodedArray, Nested, NestedInput, NonFinite, TensorInput, Value } from './arrays.js';
export { createAdjoint, decodeAnswer, decodeProbeAnswer, DIFFERENTIATION, encodeProbeRequest, encodeRequest } from './client.js';
export type { Adjoint, AdjointOptions, CallOptions, MsgpackCodec, Decoded, DifferentiationName, Endpoint, GradeAnswer, JobRequest, ProbeAnswer, ProbeRequest, Request, Submit, WireAnswer, WireRequest } from './client.js';
export { AdjointError } from './errors.js';
export { isFinished, JobCancelledError, serverSentEvents } from './jobs.js';
export type { Job, JobEndpoint, JobState, JobView, ServerSentEvent, SubmitOptions, WaitOptions } from './jobs.js';
export type { ErrorCode, Problem } from './errors.js';
export type { components, operations, paths } from './schema.js';
