// @adjoint/client: a typed client of the Adjoint service (README "Clients").

export { BASE64_THRESHOLD, encodeBase64, encodeValue, jsonNumber, Tensor, toNested, toNumber, toTensor } from './arrays.js';
export type { EncodedArray, Nested, NestedInput, NonFinite, TensorInput, Value } from './arrays.js';
export { createAdjoint, decodeAnswer, DIFFERENTIATION, encodeRequest } from './client.js';
export type { Adjoint, AdjointOptions, CallOptions, Decoded, DifferentiationName, Endpoint, Request, WireAnswer, WireRequest } from './client.js';
export { AdjointError } from './errors.js';
export type { ErrorCode, Problem } from './errors.js';
export type { components, operations, paths } from './schema.js';
