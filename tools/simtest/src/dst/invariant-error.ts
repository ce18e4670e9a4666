/**
 * The error a deterministic-simulation step throws when the system under test disagrees with the
 * oracle or an invariant breaks; fast-check shrinks the scenario that threw it.
 */

/** A broken invariant (the message names it). */
export class InvariantError extends Error {
  /**
   * @param message - the violated invariant, one line
   */
  constructor(message: string) {
    super(message);
    this.name = 'InvariantError';
  }
}
