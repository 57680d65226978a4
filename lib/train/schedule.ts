/**
 * Cosine schedules, as DALL·E uses for every hyper-parameter it anneals (β, τ, learning rate): the value moves from
 * `from` to `to` along half a cosine over `steps` updates and then stays at `to`.
 */
import { DalleError } from '../errors.js';

export interface CosineSchedule {
  from: number;
  to: number;
  /** Updates the ramp takes; 0 means `to` from the start. */
  steps: number;
}

/** The value at update `step` (0-based): to + (from − to)·(1 + cos(π·min(step, steps)/steps))/2. */
export function cosineAt(s: CosineSchedule, step: number): number {
  if (s.steps <= 0) return s.to;
  const t = Math.min(Math.max(step, 0), s.steps) / s.steps;
  return s.to + ((s.from - s.to) * (1 + Math.cos(Math.PI * t))) / 2;
}

export function checkSchedule(name: string, s: CosineSchedule): CosineSchedule {
  if (s === null || typeof s !== 'object' || !Number.isFinite(s.from) || !Number.isFinite(s.to) || !(Number.isInteger(s.steps) && s.steps >= 0)) {
    throw new DalleError('E_INVALID_ARGUMENT', `${name} schedule must be { from, to, steps } with finite values and an integer steps ≥ 0; got ${JSON.stringify(s)}`);
  }
  return { from: s.from, to: s.to, steps: s.steps };
}

/** The same schedule with its ramp stretched or shrunk by `factor` (a short run keeps the paper's shape). */
export function scaleSchedule(s: CosineSchedule, factor: number): CosineSchedule {
  return { ...s, steps: Math.max(0, Math.round(s.steps * factor)) };
}
