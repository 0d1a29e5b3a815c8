/**
 * One timer for many deadlines (confirm timeouts, handler time limits), as the Python SDK's
 * _time_limits.py does: a timer per message would cost more than the rest of the bookkeeping.
 * The sweep runs every `everyMs` while something is watched, so a deadline fires at most that
 * much late; a watched entry that is settled first is simply forgotten.
 */
export interface Deadline {
  readonly at: number;
  readonly expire: () => void;
}

export class Deadlines {
  private readonly entries = new Set<Deadline>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly everyMs: number) {}

  watch(entry: Deadline): void {
    this.entries.add(entry);
    if (this.timer === undefined) {
      this.timer = setInterval(() => this.sweep(), this.everyMs);
      this.timer.unref();
    }
  }

  forget(entry: Deadline): void {
    this.entries.delete(entry);
  }

  private sweep(): void {
    const now = Date.now();
    for (const entry of this.entries) {
      if (entry.at <= now) {
        this.entries.delete(entry);
        entry.expire();
      }
    }
    if (this.entries.size === 0 && this.timer !== undefined) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }
}
