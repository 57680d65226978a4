/**
 * A small streaming ustar reader: members come out one at a time as the shard is read, so a shard is never
 * unpacked or read whole. Handles regular files, GNU long names ('L') and pax 'path' records; other entry types
 * (directories, links) are passed over.
 */
import type { Readable } from 'node:stream';

export interface TarMember {
  name: string;
  data: Buffer;
}

/** Thrown when the stream ends inside a header or a member's data. */
export class TruncatedTarError extends Error {}

/** Pulls exact byte counts out of a chunked stream. */
class ByteReader {
  private chunks: Buffer[] = [];
  private available = 0;
  private done = false;
  constructor(private readonly it: AsyncIterator<Buffer>) {}

  /** Exactly n bytes, or fewer only at end of stream. */
  async read(n: number): Promise<Buffer> {
    while (this.available < n && !this.done) {
      const next = await this.it.next();
      if (next.done) this.done = true;
      else {
        this.chunks.push(next.value);
        this.available += next.value.length;
      }
    }
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    const take = Math.min(n, all.length);
    const out = all.subarray(0, take);
    const rest = all.subarray(take);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.available = rest.length;
    return out;
  }
}

function field(block: Buffer, offset: number, length: number): string {
  const raw = block.subarray(offset, offset + length);
  const end = raw.indexOf(0);
  return raw.subarray(0, end < 0 ? length : end).toString('utf8');
}

function octal(block: Buffer, offset: number, length: number): number {
  const text = field(block, offset, length).trim();
  const n = text === '' ? 0 : parseInt(text, 8);
  if (!Number.isFinite(n)) throw new TruncatedTarError(`bad number field ${JSON.stringify(text)}`);
  return n;
}

function checksumOk(block: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i]!;
  return sum === octal(block, 148, 8);
}

function paxPath(data: Buffer): string | undefined {
  // Records are "<len> key=value\n".
  for (const line of data.toString('utf8').split('\n')) {
    const m = /^\d+ path=(.*)$/.exec(line);
    if (m) return m[1];
  }
  return undefined;
}

export async function* readTar(stream: Readable): AsyncGenerator<TarMember> {
  const reader = new ByteReader(stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>);
  let longName: string | undefined;
  for (;;) {
    const header = await reader.read(512);
    // End of stream on a block boundary is tolerated: many writers omit the two zero blocks.
    if (header.length === 0) return;
    if (header.length < 512) throw new TruncatedTarError('stream ended inside a header');
    if (header.every((b) => b === 0)) return;
    if (!checksumOk(header)) throw new TruncatedTarError('header checksum mismatch');
    const size = octal(header, 124, 12);
    const type = String.fromCharCode(header[156]!);
    const padded = Math.ceil(size / 512) * 512;
    const body = await reader.read(padded);
    if (body.length < padded) throw new TruncatedTarError('stream ended inside a member');
    const data = body.subarray(0, size);
    if (type === 'L') {
      longName = field(data, 0, data.length);
      continue;
    }
    if (type === 'x') {
      longName = paxPath(data) ?? longName;
      continue;
    }
    if (type !== '0' && type !== '\0') {
      longName = undefined;
      continue;
    }
    const prefix = field(header, 345, 155);
    const base = field(header, 0, 100);
    const name = longName ?? (prefix !== '' ? `${prefix}/${base}` : base);
    longName = undefined;
    yield { name, data };
  }
}
