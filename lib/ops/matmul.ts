// Filled in by the matmul kernels (see native/kernels/).
export {};
