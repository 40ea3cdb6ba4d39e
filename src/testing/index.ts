// Test helpers for applications and broker authors (`nestjs-realtime/testing`): a test
// client and a token helper for end-to-end tests of an app, and the broker contract suite
// (which runs under Node's built-in test runner, `node --test`).
export { brokerContract } from './broker-contract.js';
export { RealtimeTestClient, RealtimeTestError } from './realtime-test-client.js';
export type { TestClientOptions, TestPush } from './realtime-test-client.js';
export { signTestToken } from './test-token.js';
export type { TestTokenOptions } from './test-token.js';
export type { BrokerFactory } from './broker-contract.js';
export type {
  BrokerHealth,
  BrokerMessageListener,
  BrokerPubSub,
  BrokerState,
  HistoryEntry,
  HistoryPage,
  HistoryPolicy,
  PresenceStore,
  RealtimeBroker,
  StreamPosition,
} from '../broker/broker.interface.js';
