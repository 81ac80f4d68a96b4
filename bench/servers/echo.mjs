// The ceiling: a bare Fastify server with one JSON echo route, no logger, no hooks, no schemas. Plain
// JavaScript run by plain node, like the peer. `PORT=… node bench/servers/echo.mjs` (started by bench/run.ts).
import Fastify from 'fastify';

const app = Fastify();
app.post('/echo', async (request) => request.body);
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 0) });
process.once('SIGTERM', () => void app.close().then(() => process.exit(0)));
