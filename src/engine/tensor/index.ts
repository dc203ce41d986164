// The tensor layer: the Tensor type and every kernel the op table calls.

export * from './tensor.js';
export * from './elementwise.js';
export * from './reduce.js';
export * from './layout.js';
export * from './matmul.js';
export * from './linalg.js';
