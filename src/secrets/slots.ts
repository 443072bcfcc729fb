/** At most `size` jobs run at once; the others wait in arrival order. */
export class Slots {
  private free: number;
  private readonly waiting: Array<() => void> = [];

  constructor(size: number) {
    this.free = size;
  }

  async run<T>(job: () => Promise<T>): Promise<T> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      return await job();
    } finally {
      // A finished job hands its slot straight to the next in line, so none can overtake it.
      const next = this.waiting.shift();
      if (next) next();
      else this.free++;
    }
  }
}
