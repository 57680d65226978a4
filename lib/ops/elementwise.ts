// Filled in by the elementwise kernels (see native/kernels/).
export {};
