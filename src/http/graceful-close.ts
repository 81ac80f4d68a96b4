import type { FastifyPluginAsync } from 'fastify';

/**
 * Lets `app.close()` finish while clients hold keep-alive connections. Fastify closes the connections idle
 * at the moment it closes; a connection busy then goes idle when its answer is sent, and would otherwise
 * be kept open for the whole keep-alive timeout (72 s), holding the shutdown that long. From the start of
 * the close, a connection is ended as soon as its answer is out: the keep-alive timeout becomes 1 ms and
 * the idle ones are swept until the server has closed. In-flight requests still finish and are answered;
 * new requests on open connections get fastify's 503 (`return503OnClosing`).
 */
const gracefulClose: FastifyPluginAsync = async (app) => {
  let sweeper: NodeJS.Timeout | undefined;
  app.addHook('preClose', (done) => {
    app.server.keepAliveTimeout = 1;
    sweeper = setInterval(() => app.server.closeIdleConnections(), 50);
    sweeper.unref();
    done();
  });
  app.addHook('onClose', (_instance, done) => {
    clearInterval(sweeper);
    done();
  });
};

(gracefulClose as unknown as Record<symbol, boolean>)[Symbol.for('skip-override')] = true;

export default gracefulClose;
