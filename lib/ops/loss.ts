// Filled in by the loss kernels (see native/kernels/).
export {};
