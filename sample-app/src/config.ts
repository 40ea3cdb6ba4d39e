/** The sample app's settings, read from the environment (see the README). */
export interface SampleConfig {
  port: number;
  host: string;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): SampleConfig {
  const port = env.PORT === undefined || env.PORT === '' ? 3000 : Number(env.PORT);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`PORT must be a port number (0 to 65535), got "${env.PORT}"`);
  }
  return { port, host: env.HOST || '127.0.0.1' };
}
