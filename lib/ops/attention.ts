// Filled in by the attention kernels (see native/kernels/).
export {};
