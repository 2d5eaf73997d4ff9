/**
 * `kvvm dev-vault [--port N] [--imds-port N] [--state DIR] [--rate N] [--latency-ms N] [--fault-rate F]`
 * Starts the local dev vault, prints ONE JSON line {"vaultUrl","imdsEndpoint","caCertFile"} when ready, and runs
 * until SIGINT/SIGTERM (or io.signal), then closes cleanly. A second signal while closing is ignored.
 */
import { parseArgs } from 'node:util';
import { startDevVault, type DevVaultOptions } from './server.js';

/** A stream (process.stdout) or a plain writer function (the CLI host's h.stdout). */
export type TextSink = { write(s: string): unknown } | ((s: string) => unknown);

export interface DevVaultCommandIo {
  stdout: TextSink;
  stderr: TextSink;
  env: Readonly<Record<string, string | undefined>>;
  /** Stops the vault when aborted; default: SIGINT/SIGTERM of this process. */
  signal?: AbortSignal;
}

export const DEV_VAULT_USAGE = `Usage: kvvm dev-vault [options]

Runs a local Key Vault (secrets API over HTTPS) and an IMDS-style token endpoint on 127.0.0.1.
Prints one JSON line {"vaultUrl","imdsEndpoint","caCertFile"} when ready; stop with Ctrl+C.

Options:
  --port N          vault HTTPS port (default: any free port)
  --imds-port N     token endpoint HTTP port (default: any free port)
  --state DIR       keep secrets and the CA in DIR across restarts (default: a temp dir, removed on exit)
  --rate N          allowed requests per 10 s before 429 (default 4000)
  --latency-ms N    delay every response by N ms
  --fault-rate F    answer a share F (0..1) of requests with 503
  --client-id ID    a user-assigned identity client id the token endpoint knows (repeatable)
  --help            show this help

Clients need KVVM_EXTRA_VAULT_SUFFIXES=localhost and NODE_EXTRA_CA_CERTS=<caCertFile>.
`;

function num(name: string, raw: string | undefined, min: number, max: number): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min || n > max) throw new Error(`--${name} must be a number between ${min} and ${max}, got "${raw}"`);
  return n;
}

function writer(sink: TextSink): (s: string) => void {
  return typeof sink === 'function' ? (s) => void sink(s) : (s) => void sink.write(s);
}

export async function runDevVaultCommand(argv: string[], rawIo: DevVaultCommandIo): Promise<number> {
  const io = { stdout: { write: writer(rawIo.stdout) }, stderr: { write: writer(rawIo.stderr) }, signal: rawIo.signal };
  let options: DevVaultOptions;
  try {
    const { values } = parseArgs({
      args: argv,
      strict: true,
      options: {
        port: { type: 'string' },
        'imds-port': { type: 'string' },
        state: { type: 'string' },
        rate: { type: 'string' },
        'latency-ms': { type: 'string' },
        'fault-rate': { type: 'string' },
        'client-id': { type: 'string', multiple: true },
        help: { type: 'boolean' },
      },
    });
    if (values.help) {
      io.stdout.write(DEV_VAULT_USAGE);
      return 0;
    }
    options = {};
    const port = num('port', values.port, 0, 65535);
    const imdsPort = num('imds-port', values['imds-port'], 0, 65535);
    const rate = num('rate', values.rate, 1, 1e9);
    const latency = num('latency-ms', values['latency-ms'], 0, 600_000);
    const faultRate = num('fault-rate', values['fault-rate'], 0, 1);
    if (port !== undefined) options.port = port;
    if (imdsPort !== undefined) options.imdsPort = imdsPort;
    if (values.state !== undefined) options.stateDir = values.state;
    if (rate !== undefined) options.rateLimit = { requests: rate, windowMs: 10_000 };
    if (latency !== undefined) options.latencyMs = latency;
    if (faultRate !== undefined) options.faultRate = faultRate;
    if (values['client-id']) options.identities = { systemAssigned: true, userAssigned: values['client-id'] };
  } catch (err) {
    io.stderr.write(`kvvm dev-vault: ${err instanceof Error ? err.message : String(err)}\n\n${DEV_VAULT_USAGE}`);
    return 2;
  }

  let vault;
  try {
    vault = await startDevVault(options);
  } catch (err) {
    io.stderr.write(`kvvm dev-vault: could not start: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }

  const controller = new AbortController();
  const onSignal = (): void => controller.abort();
  const ownSignals = io.signal === undefined;
  if (ownSignals) {
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  } else {
    io.signal?.addEventListener('abort', onSignal, { once: true });
    if (io.signal?.aborted) onSignal();
  }
  io.stdout.write(`${JSON.stringify({ vaultUrl: vault.vaultUrl, imdsEndpoint: vault.imdsEndpoint, caCertFile: vault.caCertFile })}\n`);
  await new Promise<void>((resolve) => {
    if (controller.signal.aborted) resolve();
    else controller.signal.addEventListener('abort', () => resolve(), { once: true });
  });
  await vault.close();
  if (ownSignals) {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  return 0;
}
