import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

/** A self-signed certificate for 127.0.0.1 made for this run in `directory` (no private key in the repository). */
export function selfSignedCertificate(directory: string): { cert: string; key: string } {
  const cert = join(directory, 'cert.pem');
  const key = join(directory, 'key.pem');
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-keyout',
        key,
        '-out',
        cert,
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1,DNS:localhost',
      ],
      { stdio: 'pipe' },
    );
  } catch (error) {
    throw new Error(`could not make a test certificate with openssl (Debian: apt-get install openssl): ${String(error)}`, { cause: error });
  }
  return { cert, key };
}
