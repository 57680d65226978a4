/** Every op, forward and backward, as typed functions over Tensors. */
export * from './run.js';
export * from './activation.js';
export * from './matmul.js';
export * from './attention.js';
export * from './transformer.js';
export * from './conv.js';
export * from './elementwise.js';
export * from './norm.js';
export * from './embedding.js';
export * from './loss.js';
export * from './logit-laplace.js';
export * from './gumbel.js';
export * from './optim.js';
export * from './random.js';
export * from './dtype.js';
