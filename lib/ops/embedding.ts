/** Token embedding lookup (text ids, pads, image codes) and its gradient. */
import type { Tensor } from '../tensor.js';
import { runOp1 } from './run.js';

/**
 * Rows of table [V, C] picked by ids, i32 [N] or [B, N] -> [N, C] or [B, N, C]. An id outside
 * [0, V) throws E_INVALID_ARGUMENT naming its position and value.
 */
export function embedding(ids: Tensor, table: Tensor): Tensor {
  return runOp1('embedding_forward', [ids, table]);
}

export interface EmbeddingBackwardOptions {
  /** V, the table's number of rows. */
  vocab: number;
}

/**
 * dtable [V, C] from ids [N] or [B, N] and dy [..., C] (ids' shape plus C): each row is the sum
 * of dy over the positions holding that id (repeated ids accumulate; unused rows are 0). The sum
 * runs in position order, so the result is deterministic.
 */
export function embeddingBackward(ids: Tensor, dy: Tensor, options: EmbeddingBackwardOptions): Tensor {
  return runOp1('embedding_backward', [ids, dy], { vocab: options.vocab });
}
