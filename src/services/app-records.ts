import type { Store } from '../store/store.js';
import { allRecords } from './all-records.js';

/**
 * Records of one namespace that belong to an app and must go when the app is deleted: people's contact
 * points, authenticator secrets, webhook secrets. Each service that stores such records declares them
 * next to its namespace (like `RecordRewrap` for key rotation); `AppsService.delete` removes them.
 * Records with a ttl (pending codes, dialect bindings) are not listed: they expire on their own.
 */
export interface AppOwnedRecords {
  namespace: string;
  /** The app a record belongs to. */
  ownerOf(id: string, value: unknown): string | undefined;
}

/** For namespaces whose record ids are `<appId>:<rest>`. */
export function ownedByIdPrefix(namespace: string): AppOwnedRecords {
  return { namespace, ownerOf: (id) => (id.includes(':') ? id.slice(0, id.indexOf(':')) : undefined) };
}

const PAGE = 500;
/** A namespace of at most PAGE × MAX_PAGES live records is swept whole; the bound only stops a runaway loop. */
const MAX_PAGES = 100_000;

/** Deletes every record of `kinds` owned by `appId`; returns how many. */
export async function deleteAppRecords(store: Store, appId: string, kinds: readonly AppOwnedRecords[], clock: () => number): Promise<number> {
  let deleted = 0;
  for (const kind of kinds) {
    for await (const item of allRecords<unknown>(store, kind.namespace, PAGE, clock, MAX_PAGES)) {
      if (kind.ownerOf(item.id, item.value) === appId && (await store.deleteRecord(kind.namespace, item.id))) deleted++;
    }
  }
  return deleted;
}
