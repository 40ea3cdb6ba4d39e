// `nestjs-realtime/redis`: the Redis broker, in an entry point of its own so that only
// applications that use it need `ioredis` installed.
export { RedisBroker } from './broker/redis-broker.js';
export type { RedisBrokerOptions, RedisClusterTarget } from './broker/redis-broker-options.js';
export type { BrokerHealth, BrokerPubSub, BrokerState, PresenceStore, RealtimeBroker } from './broker/broker.interface.js';
