/**
 * Training checkpoints as safetensors: every tensor of the parameter, EMA and Adam-moment arenas under
 * `param.`, `ema.`, `adam_m.`, `adam_v.` + its name (the arenas' own layout), and in `__metadata__` the task kind, the
 * model config and where training stood. Written atomically, so an interrupted save leaves the previous checkpoint.
 */
import type { Arena } from '../engine.js';
import { DalleError } from '../errors.js';
import { readSafetensors, writeSafetensors, type SafeTensor } from '../formats/safetensors.js';
import type { TrainState, TrainTask } from './trainer.js';

export const CHECKPOINT_FORMAT = 'dalle-engine/checkpoint@1';

export interface CheckpointState {
  /** Updates done. */
  step: number;
  epoch: number;
  /** Batches of `epoch` consumed. */
  batchInEpoch: number;
  skippedSteps: number;
}

function sections(task: TrainTask<unknown>, state: TrainState): Array<[string, Arena]> {
  const out: Array<[string, Arena]> = [['param', task.params], ['adam_m', state.m], ['adam_v', state.v]];
  if (state.ema) out.push(['ema', state.ema]);
  return out;
}

/** `extra` metadata is stored too; it cannot replace the checkpoint's own entries. */
export async function writeCheckpoint(path: string, task: TrainTask<unknown>, state: TrainState, progress: CheckpointState, extra: Record<string, string> = {}): Promise<string> {
  const tensors: Record<string, SafeTensor> = {};
  for (const [prefix, arena] of sections(task, state)) {
    for (const [name, t] of arena.tensors) tensors[`${prefix}.${name}`] = { dtype: 'F32', shape: [...t.shape], data: t.toFloat32Array() };
  }
  await writeSafetensors(path, tensors, {
    ...extra,
    format: CHECKPOINT_FORMAT,
    task: task.kind,
    config: task.configJson,
    state: JSON.stringify(progress),
  });
  return path;
}

/** Loads a checkpoint into the task's parameters and the trainer state; returns where training stood. */
export function readCheckpoint(path: string, task: TrainTask<unknown>, state: TrainState): CheckpointState {
  const { tensors, metadata } = readSafetensors(path);
  const refuse = (why: string): never => {
    throw new DalleError('E_INVALID_ARGUMENT', `cannot resume from ${path}: ${why}`);
  };
  if (metadata.format !== CHECKPOINT_FORMAT) refuse(`not a training checkpoint (format ${JSON.stringify(metadata.format)}, expected ${CHECKPOINT_FORMAT})`);
  if (metadata.task !== task.kind) refuse(`it is a ${metadata.task} checkpoint, not ${task.kind}`);
  if (metadata.config !== task.configJson) refuse(`its model config ${metadata.config} differs from this model's ${task.configJson}`);
  let progress: CheckpointState;
  try {
    progress = JSON.parse(metadata.state ?? '') as CheckpointState;
  } catch {
    return refuse('its training state is not valid JSON');
  }
  for (const key of ['step', 'epoch', 'batchInEpoch', 'skippedSteps'] as const) {
    if (!Number.isInteger(progress[key]) || progress[key] < 0) refuse(`its training state has a bad ${key}`);
  }
  // An EMA in the file that this run does not keep is dropped; one this run keeps but the file lacks starts from
  // the parameters, as a new EMA would.
  for (const [prefix, arena] of sections(task, state)) {
    for (const [name, t] of arena.tensors) {
      const saved = tensors.get(`${prefix}.${name}`);
      if (saved === undefined) {
        if (prefix === 'ema') {
          t.write(task.params.get(name).toFloat32Array());
          continue;
        }
        refuse(`it has no tensor ${prefix}.${name}`);
      }
      if (saved!.shape.join(',') !== t.shape.join(',')) refuse(`${prefix}.${name} is [${saved!.shape}] but the model has [${t.shape}]`);
      t.write(toF32(saved!));
    }
  }
  return progress;
}

function toF32(t: SafeTensor): Float32Array {
  if (!(t.data instanceof Float32Array)) throw new DalleError('E_INVALID_ARGUMENT', `checkpoint tensor of dtype ${t.dtype}: expected F32`);
  return t.data;
}
