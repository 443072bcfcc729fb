/** What commands touch of the outside world, so tests can run them in-process. */
export interface Io {
  env: NodeJS.ProcessEnv;
  out(text: string): void;
  err(text: string): void;
  readFile(path: string): string;
  /** Settles with the first SIGINT, SIGTERM or SIGHUP; the ones after it are absorbed (the command is ending). */
  untilSignal(): Promise<NodeJS.Signals>;
}
