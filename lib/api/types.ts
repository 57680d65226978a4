/** The public types of the Node API (lib/api/dalle.ts), shared with its worker. */

/** Where the model's ops run. */
export type Backend = 'cpu' | 'cuda';

export interface LoadOptions {
  /**
   * 'auto' (default) takes the best backend that can run every op of the model; 'cpu' or 'cuda' insists on one and
   * fails with E_UNSUPPORTED, saying why, when it cannot.
   */
  backend?: Backend | 'auto';
}

export interface GenerateProgress {
  /** Image tokens sampled so far over all n samples, and in all (n·grid²). */
  tokens: number;
  total: number;
  /** Sampled tokens per second since the request started. */
  tokensPerSecond: number;
  /** 'sampling' while tokens are drawn, 'reranking' once CLIP scores the samples. */
  phase: 'sampling' | 'reranking';
}

export interface GenerateOptions {
  /** Samples to draw. Default 8. */
  n?: number;
  /** How many of them to return, best CLIP score first. Default n (all, ordered). */
  keep?: number;
  /** Samples drawn together; only speed depends on it (each sample has its own random stream). Default min(n, 16). */
  batch?: number;
  /** Integer key of the random streams: equal options and seed give equal images. Default 0. */
  seed?: number;
  /** Divides the logits; default 1 (the paper's). 0 picks the most likely code. */
  temperature?: number;
  /** Sample only among the k most likely codes; 0 (default) keeps all. */
  topK?: number;
  /** Sample only among the most likely codes whose probability reaches p; 1 (default) keeps all. */
  topP?: number;
  /** Image completion: PNG or JPEG bytes; its centred square, resized to the model's size, gives the top rows. */
  image?: Uint8Array;
  /** Rows of codes kept from `image` (default: the paper's 15 of 32, scaled to the model's grid). */
  rows?: number;
  /** Aborting rejects the request with a DalleAbortError (name 'AbortError') within one token. */
  signal?: AbortSignal;
  /** Called as tokens are sampled; an exception thrown here rejects the request. */
  onProgress?: (progress: GenerateProgress) => void;
}

export interface GeneratedImage {
  /** The image as an RGB PNG file. */
  png: Uint8Array;
  /** Its pixels, uint8 [size, size, 3]. */
  pixels: Uint8Array;
  /** CLIP's cosine similarity to the prompt; null when the model has no CLIP. */
  score: number | null;
  /** Which of the n samples it is (sample i is the same for any batch size). */
  index: number;
}

export interface GenerateResult {
  /** The kept samples, best first (in sample order when the model has no CLIP). */
  images: GeneratedImage[];
  /** Image side in pixels. */
  size: number;
  /** The prompt had more BPE tokens than the model's text slots: its end was dropped. */
  truncated: boolean;
  seconds: number;
  backend: Backend;
}

/** What a loaded model is. */
export interface ModelInfo {
  name: string;
  description: string | null;
  /** The manifest it was loaded from. */
  path: string;
  backend: Backend;
  /** Image side in pixels and the code grid side. */
  imageSize: number;
  grid: number;
  /** Text slots of the transformer: longer prompts are truncated. */
  textLength: number;
  parameters: { dvae: number; transformer: number; clip: number };
  /** The model reranks samples with CLIP. */
  reranks: boolean;
}
