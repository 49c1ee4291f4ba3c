/** Why a store could not take a recording; `permanent` failures will not heal by retrying. */
export type StoreErrorCode = 'name_taken' | 'wrong_store';

export class StoreError extends Error {
  override name = 'StoreError';
  readonly code: StoreErrorCode;
  readonly permanent: boolean;

  constructor(code: StoreErrorCode, message: string, opts: { permanent: boolean }) {
    super(message);
    this.code = code;
    this.permanent = opts.permanent;
  }
}
