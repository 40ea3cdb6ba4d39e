// One instance of the sample app (its AppModule, configured from the environment as
// `npm start` does: JWT_SECRET, REDIS_URL or REDIS_CLUSTER, HEARTBEAT_*) for bench/scale-out,
// bench/connections and bench/reconnect-storm. Listens on PORT when it is set (a restart
// on the same port), on a free port otherwise, and prints {"port": N} once listening.
// Started with an IPC channel and --expose-gc, it answers memory queries after a full GC.
import 'reflect-metadata';
import { AppModule } from '../../sample-app/src/app.module.js';
import { loadConfig } from '../../sample-app/src/config.js';
import { answerBenchQueries } from '../support/server-process.js';
import { serveNest } from './serve.js';

answerBenchQueries();
await serveNest(AppModule.register(loadConfig()), process.env.PORT ? Number(process.env.PORT) : 0);
