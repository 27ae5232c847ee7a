import { duplicateIndexes } from '@bazaar/event-bus';
import type { Collection, Document, OptionalUnlessRequiredId } from 'mongodb';

/** A result of `CommandBatch`'s `execute` that fails only its own call. */
export class CallFailed {
  constructor(readonly error: unknown) {}
}

/**
 * Collects the calls made in one turn of the event loop and runs them as one database command
 * (`execute` gets every input and returns one result per input, in order, or `CallFailed` for a call
 * that failed alone). A failed command fails every call of it.
 *
 * On FerretDB a command costs far more than the documents in it (measured: 50 concurrent
 * `insertOne` 300–550 documents/s, one `insertMany` of 50 about 2,200/s, ADR 0003 decision 14), so
 * the writes that concurrent requests make at the same moment go together.
 */
export class CommandBatch<I, R> {
  #queue: { input: I; resolve(result: R): void; reject(error: unknown): void }[] = [];
  readonly #execute: (inputs: I[]) => Promise<(R | CallFailed)[]>;

  constructor(execute: (inputs: I[]) => Promise<(R | CallFailed)[]>) {
    this.#execute = execute;
  }

  run(input: I): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.#queue.push({ input, resolve, reject });
      if (this.#queue.length === 1) setImmediate(() => void this.#flush());
    });
  }

  async #flush(): Promise<void> {
    const batch = this.#queue;
    this.#queue = [];
    try {
      const results = await this.#execute(batch.map((call) => call.input));
      batch.forEach((call, index) => {
        const result = results[index];
        if (result instanceof CallFailed) call.reject(result.error);
        else call.resolve(result as R);
      });
    } catch (error) {
      for (const call of batch) call.reject(error);
    }
  }
}

export interface BatchedInsertOptions<T extends Document & { _id: string }> {
  /**
   * Whether a stored document is the one this caller inserted (e.g. same token). Asked only after a
   * command failed for another reason than duplicate keys, when some documents may have been
   * written: a caller whose document is there is told it was inserted, so nothing it holds is lost.
   */
  readonly isSame: (stored: T, inserted: T) => boolean;
}

/**
 * Inserts by unique `_id`, the concurrent ones as one unordered `insertMany`: resolves `true` when
 * this caller's document was inserted, `false` when the `_id` existed already (the atomic claim that
 * FerretDB offers). After any other failure, what is stored decides per caller: a caller whose
 * document is there was inserted, one whose `_id` holds another document lost the claim, and the
 * others see the failure.
 */
export function batchedInsert<T extends Document & { _id: string }>(
  collection: Collection<T>,
  options: BatchedInsertOptions<T>,
): (document: T) => Promise<boolean> {
  const batch = new CommandBatch<T, boolean>(async (documents) => {
    if (documents.length === 1) {
      try {
        await collection.insertOne(documents[0] as OptionalUnlessRequiredId<T>);
        return [true];
      } catch (error) {
        if (isDuplicateKey(error)) return [false];
        throw error;
      }
    }
    try {
      await collection.insertMany(documents as OptionalUnlessRequiredId<T>[], { ordered: false });
      return documents.map(() => true);
    } catch (error) {
      try {
        const taken = duplicateIndexes(error);
        return documents.map((_, index) => !taken.has(index));
      } catch {
        return resolveAfterFailure(collection, documents, options.isSame, error);
      }
    }
  });
  return (document) => batch.run(document);
}

/** After an unexpected failure: what is stored decides, per document; the rest fail. */
async function resolveAfterFailure<T extends Document & { _id: string }>(
  collection: Collection<T>,
  documents: readonly T[],
  isSame: (stored: T, inserted: T) => boolean,
  failure: unknown,
): Promise<(boolean | CallFailed)[]> {
  const stored = new Map<string, T>();
  for (const document of documents) {
    // One by one: FerretDB serves `{ _id }` from an index (ADR 0008) but scans for `$in`.
    const found = (await collection.findOne({ _id: document._id } as never)) as T | null;
    if (found !== null) stored.set(found._id, found);
  }
  return documents.map((document) => {
    const found = stored.get(document._id);
    // A document that is not there was not written: its caller must see the failure.
    return found === undefined ? new CallFailed(failure) : isSame(found, document);
  });
}

export function isDuplicateKey(error: unknown): boolean {
  return typeof error === 'object' && error !== null && 'code' in error && error.code === 11000;
}
