import { isEmailAddress, isE164, parseDestination } from '../core/destination.js';
import { invalid, OtpdError } from '../errors.js';
import { ownedByIdPrefix } from './app-records.js';
import type { AppRecord, Store } from '../store/store.js';

/**
 * Subjects: an app's users and where they can be reached. Dialects whose requests name a user instead of
 * an address (seed 000's GetPlusID) send to the contact points registered here through the native
 * `PUT /v1/subjects/:id`. Stored as one record per (app, id), so both stores keep them the same way.
 */
export interface Subject {
  id: string;
  /** E.164. */
  phone: string | null;
  email: string | null;
  createdAt: number;
  updatedAt: number;
}

export interface SubjectContacts {
  phone?: string | null;
  email?: string | null;
}

const NAMESPACE = 'subject';
/** A person's contact points go with their app (`AppsService.delete`). */
export const SUBJECT_RECORDS = ownedByIdPrefix(NAMESPACE);
/** Ids as other systems write them (user ids, Mongo ObjectIds, e-mail-like logins), never path separators. */
export const SUBJECT_ID = /^[A-Za-z0-9._:@-]{1,128}$/;
const MAX_CAS_ROUNDS = 5;

export class SubjectsService {
  constructor(
    private readonly store: Store,
    private readonly clock: () => number,
  ) {}

  private static checkId(id: string): void {
    if (!SUBJECT_ID.test(id)) throw invalid('id', 'must be 1-128 letters, digits or . _ : @ -');
  }

  /** Creates or replaces a subject's contact points; `created` tells which. */
  async put(app: AppRecord, id: string, contacts: SubjectContacts): Promise<{ subject: Subject; created: boolean }> {
    SubjectsService.checkId(id);
    let phone: string | null = null;
    let email: string | null = null;
    if (contacts.phone !== undefined && contacts.phone !== null) {
      if (!isE164(contacts.phone)) throw invalid('phone', 'must be an E.164 phone number (+ and 8-15 digits)');
      phone = contacts.phone;
    }
    if (contacts.email !== undefined && contacts.email !== null) {
      if (!isEmailAddress(contacts.email.trim())) throw invalid('email', 'must be an email address');
      email = parseDestination(contacts.email, 'email').value;
    }
    if (phone === null && email === null) throw invalid('body', 'give phone, email or both');
    // Compare-and-set keeps createdAt right when two writers race on a new subject.
    for (let round = 0; round < MAX_CAS_ROUNDS; round++) {
      const now = this.clock();
      const existing = await this.store.getRecord<Subject>(NAMESPACE, this.key(app, id), now);
      const subject: Subject = { id, phone, email, createdAt: existing?.value.createdAt ?? now, updatedAt: now };
      const written = await this.store.putRecord(NAMESPACE, this.key(app, id), subject, { ifVersion: existing ? existing.version : null }, now);
      if (written !== undefined) return { subject, created: !existing };
    }
    throw new OtpdError('RATE_LIMITED', `subject ${id} is being changed by other requests; retry`, { retryAfter: 1 });
  }

  /** The subject, or undefined (dialects decide how to answer). */
  async find(app: AppRecord, id: string): Promise<Subject | undefined> {
    if (!SUBJECT_ID.test(id)) return undefined;
    return (await this.store.getRecord<Subject>(NAMESPACE, this.key(app, id), this.clock()))?.value;
  }

  async get(app: AppRecord, id: string): Promise<Subject> {
    SubjectsService.checkId(id);
    const subject = await this.find(app, id);
    if (!subject) throw new OtpdError('NOT_FOUND', `no subject ${id}`);
    return subject;
  }

  async delete(app: AppRecord, id: string): Promise<void> {
    SubjectsService.checkId(id);
    if (!(await this.store.deleteRecord(NAMESPACE, this.key(app, id)))) throw new OtpdError('NOT_FOUND', `no subject ${id}`);
  }

  private key(app: AppRecord, id: string): string {
    return `${app.id}:${id}`;
  }
}
