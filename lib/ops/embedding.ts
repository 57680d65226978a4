// Filled in by the embedding kernels (see native/kernels/).
export {};
