// Filled in by the conv kernels (see native/kernels/).
export {};
