// Filled in by the gumbel kernels (see native/kernels/).
export {};
