/** The shared trainer, its schedules and checkpoints. */
export { learningRateAt, train, TrainState, type TrainTask, type TrainerOptions, type TrainProgress, type TrainResult, type StepMetrics, type AdamWConfig } from './trainer.js';
export { cosineAt, scaleSchedule, type CosineSchedule } from './schedule.js';
export { CHECKPOINT_FORMAT, type CheckpointState } from './checkpoint.js';
