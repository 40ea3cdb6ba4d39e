import { MemoryBroker, MemoryBus } from '../src/index.js';
import { brokerContract } from '../src/testing/index.js';

brokerContract('MemoryBroker', async () => {
  const bus = new MemoryBus();
  return { make: () => new MemoryBroker({ bus }) };
});
