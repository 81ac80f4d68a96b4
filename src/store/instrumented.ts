import type { Metrics } from '../metrics.js';
import type { Store } from './store.js';

/**
 * The same Store, with every call timed into `otpd_store_operation_duration_seconds{backend, operation}`
 * and every rejection counted in `otpd_store_errors_total`. A Proxy rather than a wrapper class, so a
 * method added to the Store contract is measured without anyone remembering to list it here.
 */
export function instrumentStore(store: Store, metrics: Metrics): Store {
  const wrappers = new Map<PropertyKey, unknown>();
  return new Proxy(store, {
    get(target, property) {
      // The target as receiver: getters and #private fields of the store class work as without the proxy.
      const value: unknown = Reflect.get(target, property);
      if (typeof value !== 'function' || typeof property !== 'string') return value;
      let wrapper = wrappers.get(property);
      if (!wrapper) {
        const method = value as (...args: unknown[]) => unknown;
        const labels = { backend: target.backend, operation: property };
        const { storeDuration, storeErrors } = metrics;
        // performance.now() and observe rather than startTimer, which makes hrtime arrays and a merged label object per call.
        wrapper = function timed(...args: unknown[]): unknown {
          const start = performance.now();
          let result: unknown;
          try {
            result = method.apply(target, args);
          } catch (error) {
            storeDuration.observe(labels, (performance.now() - start) / 1000);
            storeErrors.inc(labels);
            throw error;
          }
          if (result instanceof Promise) {
            return result.then(
              (resolved: unknown) => {
                storeDuration.observe(labels, (performance.now() - start) / 1000);
                return resolved;
              },
              (error: unknown) => {
                storeDuration.observe(labels, (performance.now() - start) / 1000);
                storeErrors.inc(labels);
                throw error;
              },
            );
          }
          storeDuration.observe(labels, (performance.now() - start) / 1000);
          return result;
        };
        wrappers.set(property, wrapper);
      }
      return wrapper;
    },
  });
}
