import { Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { after, before } from 'node:test';
import { RedisBroker } from '../src/redis.js';
import { brokerContract } from '../src/testing/index.js';
import { RedisCluster } from './support/redis-cluster.js';

let cluster: RedisCluster;

if (!process.env.TEST_LOGS) {
  Logger.overrideLogger(false);
}

before(async () => {
  cluster = await RedisCluster.start();
});

after(async () => {
  await cluster.stop();
});

brokerContract('RedisBroker on a Redis Cluster (3 masters)', async () => {
  const keyPrefix = `t${randomUUID().slice(0, 8)}:`;
  return { make: () => new RedisBroker({ cluster: { nodes: cluster.startupNodes }, keyPrefix }) };
});
