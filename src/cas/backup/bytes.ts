/**
 * Exact reads from a stream of buffers of any sizes (a file read stream): `read(n)` answers n bytes, or
 * fewer only at the end of the stream. Holds at most what one read asks for plus one source buffer.
 */
export class ByteReader {
  private readonly source: AsyncIterator<Buffer>;
  private buffered: Buffer[] = [];
  private size = 0;
  private ended = false;
  /** Bytes handed out so far: the offset of the next read, for messages. */
  offset = 0;

  constructor(source: AsyncIterable<Buffer>) {
    this.source = source[Symbol.asyncIterator]();
  }

  async read(n: number): Promise<Buffer> {
    while (this.size < n && !this.ended) {
      const next = await this.source.next();
      if (next.done) this.ended = true;
      else if (next.value.length > 0) {
        this.buffered.push(next.value);
        this.size += next.value.length;
      }
    }
    const all = this.buffered.length === 1 ? this.buffered[0]! : Buffer.concat(this.buffered);
    const out = all.subarray(0, n);
    const rest = all.subarray(out.length);
    this.buffered = rest.length > 0 ? [rest] : [];
    this.size = rest.length;
    this.offset += out.length;
    return out;
  }

  /** Ends the source early (a refused file): its file handle is closed. */
  async close(): Promise<void> {
    await this.source.return?.();
  }
}
