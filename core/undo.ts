// Every mutation records how to take back each step it made; if a later step
// fails, the steps are undone newest first and the original error is thrown.

export class Undo {
  private readonly steps: { what: string; fn: () => unknown }[] = [];

  /** Records how to undo the step that just succeeded. */
  push(what: string, fn: () => unknown): void {
    this.steps.push({ what, fn });
  }

  /** Runs fn; on failure undoes every recorded step and rethrows fn's error. */
  async run<T>(fn: (undo: Undo) => Promise<T>): Promise<T> {
    try {
      return await fn(this);
    } catch (err) {
      await this.rollback(err);
      throw err;
    }
  }

  private async rollback(cause: unknown): Promise<void> {
    for (const step of this.steps.splice(0).reverse()) {
      try {
        await step.fn();
      } catch (err) {
        // The original failure is what the user must see; a failed undo is reported beside it.
        const note = `could not undo "${step.what}": ${(err as Error).message}`;
        if (cause instanceof Error) cause.message += `; ${note}`;
      }
    }
  }
}
