/** Ctrl-C for long commands: the first one stops the work cleanly, a second one does not wait. */

/** Exit status of a run stopped by Ctrl-C, as shells report a SIGINT death. */
export const EXIT_INTERRUPTED = 130;

/** Until the returned function is called, Ctrl-C aborts `controller` after printing `notice`; a second Ctrl-C exits. */
export function abortOnCtrlC(controller: AbortController, notice: string): () => void {
  let interrupts = 0;
  const onInterrupt = (): void => {
    if (++interrupts > 1) process.exit(EXIT_INTERRUPTED);
    process.stderr.write(`\n${notice}\n`);
    controller.abort();
  };
  process.on('SIGINT', onInterrupt);
  return () => process.off('SIGINT', onInterrupt);
}
