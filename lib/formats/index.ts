/** File formats: safetensors (read and write) and PyTorch's torch.save zip files (read, without executing code). */
export { readSafetensors, writeSafetensors, serialize as serializeSafetensors, parse as parseSafetensors, castFloating, type SafeTensor, type SafeTensorData, type SafetensorsDType, type SafetensorsFile, type ReadSafetensorsOptions } from './safetensors.js';
export { readTorchFile, moduleParameters, toFloat32 as torchToFloat32, isTorchTensor, InertObject, type TorchTensor, type TorchDtype, type TorchData, type ReadTorchOptions } from './torch.js';
export type { PickleTuple } from './pickle.js';
