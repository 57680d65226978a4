// Filled in by the dtype kernels (see native/kernels/).
export {};
