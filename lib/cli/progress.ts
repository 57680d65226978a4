/**
 * A progress bar with rate and ETA on a terminal; silent when stderr is not a TTY (CI logs, pipes), so output
 * that is parsed stays clean.
 */
import cliProgress from 'cli-progress';

export class Progress {
  private readonly bar: cliProgress.SingleBar | null;
  private start = 0;

  constructor(label: string, total: number, unit: string) {
    if (!process.stderr.isTTY) {
      this.bar = null;
      return;
    }
    this.bar = new cliProgress.SingleBar(
      {
        format: `${label} [{bar}] {value}/{total} ${unit} | {rate}/s | ETA {eta_formatted}{note}`,
        stream: process.stderr,
        hideCursor: true,
        etaBuffer: 50,
      },
      cliProgress.Presets.shades_classic,
    );
    this.start = performance.now();
    this.bar.start(total, 0, { rate: '0', note: '' });
  }

  /** `note` (e.g. the current loss) is shown after the ETA. */
  update(done: number, note = ''): void {
    if (this.bar === null) return;
    const seconds = (performance.now() - this.start) / 1000;
    this.bar.update(done, { rate: seconds > 0 ? (done / seconds).toFixed(1) : '0', note: note && ` | ${note}` });
  }

  stop(): void {
    this.bar?.stop();
  }
}
