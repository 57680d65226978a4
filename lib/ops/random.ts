// Filled in by the random kernels (see native/kernels/).
export {};
