// Socket.IO's protocol as the raw-TCP load generator speaks it, for the benchmarks that
// count Socket.IO among their contenders.
import { type LoadConnection, maskedTextFrame } from './ws-load.js';

/** Socket.IO's own handshake over the open WebSocket: engine.io open, then a namespace connect. */
export function socketIoPrepare(connection: LoadConnection): Promise<void> {
  return new Promise((resolve) => {
    connection.intercept = (payload, self) => {
      const text = payload.toString();
      if (text.startsWith('0{')) {
        self.socket.write(maskedTextFrame('40'));
        return true;
      }
      if (text.startsWith('40')) {
        resolve();
        return true;
      }
      if (text === '2') {
        self.socket.write(maskedTextFrame('3'));
        return true;
      }
      return false;
    };
  });
}
