// Filled in by the optim kernels (see native/kernels/).
export {};
