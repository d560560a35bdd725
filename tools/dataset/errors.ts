/**
 * The dataset tool's error for bad input.
 *
 * @module
 */

/**
 * A bad argument, option or input file; the CLI prints its message and exits with 2.
 *
 * @example Usage
 * ```ts
 * throw new DatasetError(`Cannot import dataset: file "x.zip" not found`);
 * ```
 */
export class DatasetError extends Error {
  /**
   * @param message What went wrong, std style: "Cannot import dataset: …".
   * @param options Standard error options.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "DatasetError";
  }
}
