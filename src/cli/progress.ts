/**
 * A one-line progress bar for a terminal: `[#####.....] 1234/5000 keys`,
 * redrawn in place with a carriage return.
 */

/** Where text goes: a stream or anything with `write`. */
export interface TextSink {
  /** Writes `text` as is. */
  write(text: string): unknown
}

/** Redraws at most this often, so a fast loop does not flood the terminal. */
const REDRAW_MS = 100

/** A progress bar on a terminal stream; use only when that stream is a TTY. */
export class ProgressBar {
  readonly #out: TextSink
  readonly #total: number
  readonly #unit: string
  readonly #width: number
  readonly #clock: () => number
  #lastDraw = Number.NEGATIVE_INFINITY
  #done = 0

  /**
   * @param out the terminal stream (stderr, so stdout stays clean for results)
   * @param total the count that means complete
   * @param unit what is counted, after the numbers (`keys`)
   * @param width the bar's width in characters
   * @param clock milliseconds, for throttling redraws
   */
  constructor(out: TextSink, total: number, unit = 'keys', width = 30, clock = Date.now) {
    this.#out = out
    this.#total = total
    this.#unit = unit
    this.#width = width
    this.#clock = clock
  }

  /** The bar for `done` of the total, without the carriage return. */
  render(done: number): string {
    const fraction = this.#total === 0 ? 1 : Math.min(1, Math.max(0, done / this.#total))
    const filled = Math.round(fraction * this.#width)
    return `[${'#'.repeat(filled)}${'.'.repeat(this.#width - filled)}] ${done}/${this.#total} ${this.#unit}`
  }

  /** Records progress; redraws unless it did so less than 100 ms ago (the final count always draws). */
  update(done: number): void {
    this.#done = done
    const now = this.#clock()
    if (done < this.#total && now - this.#lastDraw < REDRAW_MS) return
    this.#lastDraw = now
    this.#out.write(`\r${this.render(done)}`)
  }

  /** Draws the last state and ends the line. */
  finish(): void {
    this.#out.write(`\r${this.render(this.#done)}\n`)
  }
}
