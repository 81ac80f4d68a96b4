/**
 * Test numbers (per-app setting `testNumbers`, `destination=code`): destinations that always get the same
 * code and never reach a provider, for app store review and CI. Such verifications answer
 * `delivery.provider: "test"`, so a client can tell them apart.
 */
export const TEST_PROVIDER = 'test';

/** The fixed code of `to` in an app's test numbers, or undefined when `to` is not one. */
export function testCodeFor(testNumbers: readonly string[], to: string): string | undefined {
  for (const entry of testNumbers) {
    const eq = entry.lastIndexOf('=');
    const destination = entry.slice(0, eq);
    const matches = destination.includes('@') ? destination.toLowerCase() === to.toLowerCase() : destination === to;
    if (matches) return entry.slice(eq + 1);
  }
  return undefined;
}
