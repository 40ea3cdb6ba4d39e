// Test helpers for applications and broker authors (`nestjs-realtime/testing`). They run
// under Node's built-in test runner (`node --test`).
export { brokerContract } from './broker-contract.js';
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
