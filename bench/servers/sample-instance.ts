// One instance of the sample app (its AppModule, configured from the environment as
// `npm start` does: JWT_SECRET, REDIS_URL or REDIS_CLUSTER) for bench/scale-out. Prints
// {"port": N} once listening on a free port.
import 'reflect-metadata';
import { AppModule } from '../../sample-app/src/app.module.js';
import { loadConfig } from '../../sample-app/src/config.js';
import { serveNest } from './serve.js';

await serveNest(AppModule.register(loadConfig()));
