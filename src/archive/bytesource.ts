// Exact byte counts out of an async chunk source (a tar stream, a delta):
// chunks are joined only when a read spans them, and content is handed on
// chunk by chunk without joining at all.

export class ByteSource {
  private buf: Buffer = Buffer.alloc(0);
  private done = false;

  /** `eof` makes the error a read that needs more bytes than the source has throws. */
  constructor(
    private readonly it: AsyncIterator<Buffer>,
    private readonly eof: () => Error,
  ) {}

  private async fill(): Promise<boolean> {
    if (this.done) return false;
    const r = await this.it.next();
    if (r.done) {
      this.done = true;
      return false;
    }
    this.buf = this.buf.length === 0 ? r.value : Buffer.concat([this.buf, r.value]);
    return true;
  }

  /** n bytes, or fewer only at the end of the source. */
  async read(n: number): Promise<Buffer> {
    while (this.buf.length < n) if (!(await this.fill())) break;
    const out = this.buf.subarray(0, Math.min(n, this.buf.length));
    this.buf = this.buf.subarray(out.length);
    return out;
  }

  /** Exactly n bytes. */
  async exact(n: number): Promise<Buffer> {
    const out = await this.read(n);
    if (out.length < n) throw this.eof();
    return out;
  }

  /** Exactly n bytes as they arrive, without joining chunks. */
  async *chunks(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.buf.length === 0 && !(await this.fill())) throw this.eof();
      const take = this.buf.subarray(0, Math.min(left, this.buf.length));
      this.buf = this.buf.subarray(take.length);
      left -= take.length;
      yield take;
    }
  }

  /** Everything left. */
  async rest(): Promise<Buffer> {
    while (await this.fill());
    const out = this.buf;
    this.buf = Buffer.alloc(0);
    return out;
  }

  async atEnd(): Promise<boolean> {
    return this.buf.length === 0 && !(await this.fill());
  }
}
