/** File formats: safetensors (read and write) and PyTorch's torch.save zip files (read, without executing code). */
export { readSafetensors, writeSafetensors, serialize as serializeSafetensors, parse as parseSafetensors, type SafeTensor, type SafetensorsDType, type SafetensorsFile } from './safetensors.js';
export { readTorchFile, moduleParameters, toFloat32 as torchToFloat32, isTorchTensor, InertObject, type TorchTensor, type TorchDtype } from './torch.js';
