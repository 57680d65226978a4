// Filled in by the norm kernels (see native/kernels/).
export {};
