/**
 * `kvvm dev-vault [--host NAME] [--seed DIR] [--port N] [--imds-port N] [--state DIR] [--rate N] ...`
 * Starts the local dev vault, prints ONE JSON line {"vaultUrl","imdsEndpoint","caCertFile","hostsLine",
 * "resolvesHere"} on stdout when ready (and on stderr how to reach it: reachability.ts), and runs until
 * SIGINT/SIGTERM (or io.signal), then closes cleanly. A second signal while closing is ignored.
 * `kvvm dev-vault put ...` imports a certificate into a running one (put.ts).
 */
import { readdir, readFile } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { runPut, PUT_USAGE } from './put.js';
import { guidance, hostsLine, resolveHere } from './reachability.js';
import { startDevVault, type DevVault, type DevVaultOptions } from './server.js';

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
       kvvm dev-vault put <name> <file.pfx|file.pem> --vault-url URL [--password P] [--ca FILE]

Runs a local Key Vault (secrets API and the certificates API's import/create/get/versions, over HTTPS) and an
IMDS-style managed-identity token endpoint, on 127.0.0.1. Prints one JSON line
{"vaultUrl","imdsEndpoint","caCertFile","hostsLine","resolvesHere"} when ready, and on stderr how to reach it;
when its name does not resolve to this machine, the /etc/hosts line to add (and curl's --resolve form).
Stop with Ctrl+C.

A complete session:
  # 1. start it (keeps its CA and certificates in ./vault across restarts; seeds every .pfx/.pem in ./certs)
  kvvm dev-vault --state ./vault --port 8443 --imds-port 8444 --seed ./certs
  # 2. if it says so, add its hosts line once:  echo '127.0.0.1 kvvm.localhost' | sudo tee -a /etc/hosts
  # 3. in another shell: trust its CA and put a certificate in (a PFX or a PEM holding key and certificate)
  export NODE_EXTRA_CA_CERTS=./vault/ca.pem
  kvvm dev-vault put web ./web.pfx --vault-url https://kvvm.localhost:8443
  # 4. point an extension at it: settings
  #    {"secretsManagementSettings": {"pollingIntervalInS": "300",
  #       "observedCertificates": ["https://kvvm.localhost:8443/secrets/web"]},
  #     "authenticationSettings": {"msiEndpoint": "http://127.0.0.1:8444/metadata/identity/oauth2/token"}}
  #    and the service's environment KVVM_EXTRA_VAULT_SUFFIXES=localhost NODE_EXTRA_CA_CERTS=./vault/ca.pem
  #    (the Azure SDKs in your own scripts: new SecretClient / CertificateClient("https://kvvm.localhost:8443", ...))

Options:
  --host NAME       vault host name (default kvvm.localhost); its parent domain is the token audience
  --seed DIR        import every .pfx/.p12/.pem in DIR as a certificate named after the file, at start
  --port N          vault HTTPS port (default: any free port)
  --imds-port N     token endpoint HTTP port (default: any free port)
  --state DIR       keep secrets and the CA in DIR across restarts (default: a temp dir, removed on exit)
  --rate N          allowed requests per 10 s before 429 (default 4000)
  --latency-ms N    delay every response by N ms
  --fault-rate F    answer a share F (0..1) of requests with 503
  --client-id ID    a user-assigned identity client id the token endpoint knows (repeatable)
  --help            show this help

kvvm's service needs KVVM_EXTRA_VAULT_SUFFIXES=<parent domain of the host> and NODE_EXTRA_CA_CERTS=<caCertFile>.

${PUT_USAGE}`;

function num(name: string, raw: string | undefined, min: number, max: number): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min || n > max) throw new Error(`--${name} must be a number between ${min} and ${max}, got "${raw}"`);
  return n;
}

function writer(sink: TextSink): (s: string) => void {
  return typeof sink === 'function' ? (s) => void sink(s) : (s) => void sink.write(s);
}

/** Every .pfx/.p12/.pem of DIR becomes a certificate named after its file (other characters become '-'). */
async function seed(vault: DevVault, dir: string): Promise<string[]> {
  const files = (await readdir(dir)).filter((f) => ['.pfx', '.p12', '.pem'].includes(extname(f).toLowerCase())).sort();
  const names: string[] = [];
  for (const f of files) {
    const bytes = await readFile(join(dir, f));
    const name = basename(f, extname(f))
      .replace(/[^0-9a-zA-Z-]/g, '-')
      .slice(0, 127);
    const isPem = extname(f).toLowerCase() === '.pem';
    try {
      vault.importCertificate(name, isPem ? bytes.toString('utf8') : bytes.toString('base64'));
    } catch (err) {
      throw new Error(`--seed ${join(dir, f)}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    names.push(name);
  }
  return names;
}

export async function runDevVaultCommand(argv: string[], rawIo: DevVaultCommandIo): Promise<number> {
  const io = { stdout: { write: writer(rawIo.stdout) }, stderr: { write: writer(rawIo.stderr) }, signal: rawIo.signal };
  if (argv[0] === 'put') {
    if (argv.includes('--help') || argv.includes('-h')) {
      io.stdout.write(PUT_USAGE);
      return 0;
    }
    try {
      return await runPut(argv.slice(1), { stdout: io.stdout.write, env: rawIo.env });
    } catch (err) {
      io.stderr.write(`kvvm dev-vault put: ${err instanceof Error ? err.message : String(err)}\n`);
      return err instanceof TypeError ? 2 : 1;
    }
  }
  let options: DevVaultOptions;
  let seedDir: string | undefined;
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
        host: { type: 'string' },
        seed: { type: 'string' },
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
    if (values.host !== undefined) options.host = values.host;
    seedDir = values.seed;
  } catch (err) {
    io.stderr.write(`kvvm dev-vault: ${err instanceof Error ? err.message : String(err)}\n\n${DEV_VAULT_USAGE}`);
    return 2;
  }

  let vault: DevVault;
  try {
    vault = await startDevVault(options);
  } catch (err) {
    io.stderr.write(`kvvm dev-vault: could not start: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
  if (seedDir !== undefined) {
    try {
      const names = await seed(vault, seedDir);
      io.stderr.write(`kvvm dev-vault: seeded ${names.length} certificate(s) from ${seedDir}: ${names.join(', ') || '(no .pfx/.p12/.pem files)'}\n`);
    } catch (err) {
      io.stderr.write(`kvvm dev-vault: ${err instanceof Error ? err.message : String(err)}\n`);
      await vault.close();
      return 1;
    }
  }
  const resolution = await resolveHere(vault.host);

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
  io.stdout.write(
    `${JSON.stringify({ vaultUrl: vault.vaultUrl, imdsEndpoint: vault.imdsEndpoint, caCertFile: vault.caCertFile, hostsLine: hostsLine(vault.host), resolvesHere: resolution.loopback })}\n`,
  );
  io.stderr.write(
    guidance({
      vaultUrl: vault.vaultUrl,
      host: vault.host,
      port: Number(new URL(vault.vaultUrl).port),
      resource: vault.resource,
      imdsEndpoint: vault.imdsEndpoint,
      caCertFile: vault.caCertFile,
      resolution,
    }),
  );
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
