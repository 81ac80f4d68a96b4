import type { RecordPage, Store } from '../store/store.js';

export type ListedRecord<T> = RecordPage<T>['items'][number];

/**
 * Every live record of a namespace, fetched `pageSize` at a time through `Store.listRecords` until its
 * cursor ends (on Redis a record may come twice: SCAN). The one walk over a namespace that key rotation
 * and app deletion share. `maxPages` stops a runaway walk (a cursor that never ends) after that many pages.
 */
export async function* allRecords<T>(store: Store, namespace: string, pageSize: number, clock: () => number, maxPages = Infinity): AsyncGenerator<ListedRecord<T>> {
  let cursor: string | undefined;
  let pages = 0;
  do {
    const page = await store.listRecords<T>(namespace, cursor, pageSize, clock());
    yield* page.items;
    cursor = page.nextCursor;
  } while (cursor !== undefined && ++pages < maxPages);
}
