/**
 * A local Azure Resource Manager endpoint for the compute routes `kvvm deploy` / `kvvm status` use, served over
 * HTTPS on 127.0.0.1 with a generated CA (the client trusts it explicitly; verification stays on).
 *
 * Response bodies are built from the recorded REST API examples in shared/vectors/rest-api-specs
 * (VirtualMachineExtension_CreateOrUpdate/Get, VirtualMachineScaleSetExtension_CreateOrUpdate,
 * VirtualMachineScaleSetVMExtension_Get, VirtualMachine_Get_InstanceView): the vector body is the template and
 * only names, ids and the properties the client sent are replaced. Long-running PUTs follow ARM's two patterns:
 * 201 + Azure-AsyncOperation (poll an operation resource: InProgress → Succeeded/Failed with error) and
 * 201 + Location (202 while running, then 200 with the resource).
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { AccessToken, TokenCredential } from '@azure/identity';
import { createCa, issueCertificate } from '../../handler/devvault/certFactory.js';
import { sharedDir } from './vectors.js';

const VECTORS = join(sharedDir(), 'vectors', 'rest-api-specs');
const API_VERSION = '2024-07-01';

type Json = Record<string, unknown>;

function vector(file: string, status: string): Json {
  const doc = JSON.parse(readFileSync(join(VECTORS, file), 'utf8')) as { responses: Record<string, { body: Json }> };
  const r = doc.responses[status];
  if (!r) throw new Error(`armServer: ${file} has no ${status} response`);
  return structuredClone(r.body);
}

export interface LroScenario {
  /** sync: 200 at once; async-operation: 201 + Azure-AsyncOperation; location: 201 + Location, 202 polls. */
  mode: 'sync' | 'async-operation' | 'location';
  /** Polls answered "still running" before the outcome. */
  polls?: number;
  outcome?: 'Succeeded' | 'Failed';
  /** For Failed: the operation's error (async-operation) — ARM's VMExtensionProvisioningError shape. */
  error?: { code: string; message: string };
  /** Instance view the extension reports once the operation is over. */
  instanceView?: Json;
}

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  body: unknown;
  authorized: boolean;
}

export interface ArmServer {
  endpoint: string;
  caPem: string;
  subscriptionId: string;
  credential: TokenCredential;
  requests: RecordedRequest[];
  addVm(resourceGroup: string, name: string, options?: { location?: string; osType?: 'Linux' | 'Windows' }): void;
  addVmss(resourceGroup: string, name: string, options?: { instances?: string[] }): void;
  /** Put an extension in place directly (e.g. the app extension that must wait for ours). */
  seedVmssExtension(resourceGroup: string, vmss: string, name: string, properties: Json): void;
  /** How the next PUT of this extension name behaves. */
  scenario(extensionName: string, s: LroScenario): void;
  /** What a VMSS instance reports for an extension. */
  setVmssInstanceView(resourceGroup: string, vmss: string, instanceId: string, extension: string, instanceView: Json): void;
  /** The stored extension resource, as a GET would return it (without instance view). */
  extension(path: string): Json | undefined;
  close(): Promise<void>;
}

interface Operation {
  resourceKey: string;
  remaining: number;
  outcome: 'Succeeded' | 'Failed';
  error: { code: string; message: string } | undefined;
  instanceView: Json | undefined;
  kind: 'async-operation' | 'location';
}

interface StoredExtension {
  body: Json;
  instanceView: Json | undefined;
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': String(Buffer.byteLength(text)), 'x-ms-request-id': 'kvvm-test', ...headers });
  res.end(text);
}

function armError(res: ServerResponse, status: number, code: string, message: string): void {
  send(res, status, { error: { code, message } });
}

export async function startArmServer(options: { subscriptionId?: string } = {}): Promise<ArmServer> {
  const ca = createCa('kvvm test ARM CA');
  const tls = issueCertificate({ issuer: ca, subjectCn: 'localhost', dnsNames: ['localhost', '127.0.0.1'], days: 2 });
  const subscriptionId = options.subscriptionId ?? '00000000-1111-2222-3333-444444444444';
  const token = `kvvm-test-arm-token-${Math.random().toString(36).slice(2)}`;
  const requests: RecordedRequest[] = [];
  const vms = new Map<string, { location: string; osType: string; name: string; rg: string }>();
  const vmssInstances = new Map<string, string[]>();
  const extensions = new Map<string, StoredExtension>();
  const scenarios = new Map<string, LroScenario>();
  const operations = new Map<string, Operation>();
  const instanceViews = new Map<string, Json>();
  let opCounter = 0;
  let endpoint = '';

  const key = (...parts: string[]): string => parts.join('/').toLowerCase();
  const base = (rg: string): string => `/subscriptions/${subscriptionId}/resourceGroups/${rg}/providers/Microsoft.Compute`;

  function extensionBody(kind: 'vm' | 'vmss', rg: string, parent: string, name: string, props: Json, location: string | undefined): Json {
    if (kind === 'vm') {
      const b = vector('VirtualMachineExtension_CreateOrUpdate_MaximumSet_Gen.json', '201');
      b['name'] = name;
      b['id'] = `${base(rg)}/virtualMachines/${parent}/extensions/${name}`;
      b['location'] = location ?? 'westus';
      delete b['tags'];
      b['properties'] = { ...props, provisioningState: 'Creating' };
      return b;
    }
    const b = vector('VirtualMachineScaleSetExtension_CreateOrUpdate_MaximumSet_Gen.json', '201');
    b['name'] = name;
    b['id'] = `${base(rg)}/virtualMachineScaleSets/${parent}/extensions/${name}`;
    b['type'] = 'Microsoft.Compute/virtualMachineScaleSets/extensions';
    b['properties'] = { ...props, provisioningState: 'Creating' };
    return b;
  }

  function withoutSecrets(body: Json): Json {
    // ARM never returns protectedSettings.
    const copy = structuredClone(body);
    const props = copy['properties'] as Json | undefined;
    if (props) delete props['protectedSettings'];
    return copy;
  }

  function putExtension(res: ServerResponse, kind: 'vm' | 'vmss', rg: string, parent: string, name: string, resourceKey: string, body: Json): void {
    const props = (body['properties'] ?? {}) as Json;
    if (typeof props['publisher'] !== 'string' || typeof props['type'] !== 'string' || typeof props['typeHandlerVersion'] !== 'string') {
      armError(res, 400, 'InvalidParameter', 'The extension must specify publisher, type and typeHandlerVersion.');
      return;
    }
    if (kind === 'vm' && typeof body['location'] !== 'string') {
      armError(res, 400, 'LocationRequired', 'The location property is required for this definition.');
      return;
    }
    const stored: StoredExtension = { body: extensionBody(kind, rg, parent, name, props, body['location'] as string | undefined), instanceView: undefined };
    extensions.set(resourceKey, stored);
    const s = scenarios.get(name.toLowerCase()) ?? { mode: 'sync' };
    scenarios.delete(name.toLowerCase());
    const outcome = s.outcome ?? 'Succeeded';
    if (s.mode === 'sync') {
      (stored.body['properties'] as Json)['provisioningState'] = outcome;
      stored.instanceView = s.instanceView;
      send(res, 200, withoutSecrets(stored.body));
      return;
    }
    opCounter += 1;
    const opId = `00000000-0000-0000-0000-${String(opCounter).padStart(12, '0')}`;
    operations.set(opId, { resourceKey, remaining: s.polls ?? 2, outcome, error: s.error, instanceView: s.instanceView, kind: s.mode });
    const headers: Record<string, string> =
      s.mode === 'async-operation'
        ? { 'Azure-AsyncOperation': `${endpoint}/subscriptions/${subscriptionId}/providers/Microsoft.Compute/locations/westus/operations/${opId}?api-version=${API_VERSION}` }
        : { Location: `${endpoint}/subscriptions/${subscriptionId}/providers/Microsoft.Compute/locations/westus/operationResults/${opId}?api-version=${API_VERSION}` };
    send(res, 201, withoutSecrets(stored.body), headers);
  }

  function finish(op: Operation): StoredExtension | undefined {
    const stored = extensions.get(op.resourceKey);
    if (stored) {
      (stored.body['properties'] as Json)['provisioningState'] = op.outcome;
      stored.instanceView = op.instanceView;
    }
    return stored;
  }

  function getExtension(res: ServerResponse, resourceKey: string, expand: string | undefined, what: string): void {
    const stored = extensions.get(resourceKey);
    if (!stored) {
      armError(res, 404, 'NotFound', `The entity ${what} was not found.`);
      return;
    }
    const body = withoutSecrets(stored.body);
    if (expand?.toLowerCase() === 'instanceview' && stored.instanceView) (body['properties'] as Json)['instanceView'] = stored.instanceView;
    send(res, 200, body);
  }

  function handle(req: IncomingMessage, res: ServerResponse, raw: string): void {
    const url = new URL(req.url ?? '/', 'https://127.0.0.1');
    const query = Object.fromEntries(url.searchParams.entries());
    const segs = url.pathname
      .split('/')
      .filter((s) => s !== '')
      .map((s) => decodeURIComponent(s));
    let body: unknown = undefined;
    if (raw !== '') {
      try {
        body = JSON.parse(raw);
      } catch {
        armError(res, 400, 'InvalidRequestContent', 'The request content was invalid and could not be deserialized.');
        return;
      }
    }
    const authorized = req.headers.authorization === `Bearer ${token}`;
    requests.push({ method: req.method ?? '', path: url.pathname, query, body, authorized });
    if (!authorized) {
      armError(res, 401, 'AuthenticationFailed', 'Authentication failed. The Authorization header is missing or the token is invalid.');
      return;
    }
    if (query['api-version'] === undefined) {
      armError(res, 400, 'MissingApiVersionParameter', 'The api-version query parameter (?api-version=) is required for all requests.');
      return;
    }
    const lower = segs.map((s) => s.toLowerCase());
    // /subscriptions/{sub}/providers/Microsoft.Compute/locations/{loc}/operations|operationResults/{id}
    if (lower[0] === 'subscriptions' && lower[2] === 'providers' && lower[4] === 'locations' && segs.length === 8) {
      const opId = segs[7] ?? '';
      const op = operations.get(opId);
      if (!op) return armError(res, 404, 'NotFound', 'Operation not found.');
      if (op.remaining > 0) {
        op.remaining -= 1;
        if (op.kind === 'async-operation') return send(res, 200, { name: opId, status: 'InProgress', startTime: '2024-07-01T10:00:00Z' });
        return send(res, 202, undefined, { Location: `${endpoint}${url.pathname}${url.search}` });
      }
      const stored = finish(op);
      if (op.kind === 'async-operation') {
        const result: Json = { name: opId, status: op.outcome, startTime: '2024-07-01T10:00:00Z', endTime: '2024-07-01T10:01:00Z' };
        if (op.outcome === 'Failed') result['error'] = op.error ?? { code: 'VMExtensionProvisioningError', message: 'Extension provisioning failed.' };
        return send(res, 200, result);
      }
      return send(res, 200, stored ? withoutSecrets(stored.body) : undefined);
    }
    // /subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/{type}/{name}/...
    if (lower[0] !== 'subscriptions' || lower[2] !== 'resourcegroups' || lower[4] !== 'providers' || lower[5] !== 'microsoft.compute') {
      return armError(res, 404, 'InvalidResourceType', `No route for ${url.pathname}.`);
    }
    if (segs[1] !== subscriptionId) return armError(res, 404, 'SubscriptionNotFound', `The subscription '${segs[1] ?? ''}' could not be found.`);
    const rg = segs[3] ?? '';
    const type = lower[6];
    const parent = segs[7] ?? '';
    const rest = lower.slice(8);
    const method = req.method ?? 'GET';
    if (type === 'virtualmachines') {
      const vm = vms.get(key(rg, parent));
      if (!vm) return armError(res, 404, 'ResourceNotFound', `The Resource 'Microsoft.Compute/virtualMachines/${parent}' under resource group '${rg}' was not found.`);
      if (rest.length === 0 && method === 'GET') {
        return send(res, 200, {
          name: vm.name,
          id: `${base(vm.rg)}/virtualMachines/${vm.name}`,
          type: 'Microsoft.Compute/virtualMachines',
          location: vm.location,
          properties: { provisioningState: 'Succeeded', storageProfile: { osDisk: { osType: vm.osType, name: 'myOsDisk', createOption: 'FromImage' } } },
        });
      }
      if (rest.length === 1 && rest[0] === 'instanceview' && method === 'GET') {
        const iv = vector('VirtualMachine_Get_InstanceView.json', '200');
        iv['computerName'] = vm.name;
        const exts = (iv['extensions'] as Json[]) ?? [];
        for (const [k, stored] of extensions) {
          if (!k.startsWith(key(rg, 'vm', parent) + '/')) continue;
          const p = stored.body['properties'] as Json;
          exts.push({
            name: stored.body['name'],
            type: `${String(p['publisher'])}.${String(p['type'])}`,
            typeHandlerVersion: p['typeHandlerVersion'],
            ...(stored.instanceView ?? {}),
          });
        }
        iv['extensions'] = exts;
        return send(res, 200, iv);
      }
      if (rest.length === 2 && rest[0] === 'extensions') {
        const extName = segs[9] ?? '';
        const k = key(rg, 'vm', parent, extName);
        if (method === 'PUT') return putExtension(res, 'vm', rg, vm.name, extName, k, (body ?? {}) as Json);
        if (method === 'GET') return getExtension(res, k, query['$expand'], extName);
      }
    }
    if (type === 'virtualmachinescalesets') {
      const instances = vmssInstances.get(key(rg, parent));
      if (!instances)
        return armError(res, 404, 'ResourceNotFound', `The Resource 'Microsoft.Compute/virtualMachineScaleSets/${parent}' under resource group '${rg}' was not found.`);
      if (rest.length === 2 && rest[0] === 'extensions') {
        const extName = segs[9] ?? '';
        const k = key(rg, 'vmss', parent, extName);
        if (method === 'PUT') return putExtension(res, 'vmss', rg, parent, extName, k, (body ?? {}) as Json);
        if (method === 'GET') return getExtension(res, k, undefined, extName);
      }
      // .../virtualMachineScaleSets/{vmss}/virtualMachines/{id}/extensions/{ext}
      if (rest.length === 4 && rest[0] === 'virtualmachines' && rest[2] === 'extensions' && method === 'GET') {
        const instanceId = segs[9] ?? '';
        const extName = segs[11] ?? '';
        if (!instances.includes(instanceId)) return armError(res, 404, 'NotFound', `Instance ${instanceId} not found.`);
        const model = extensions.get(key(rg, 'vmss', parent, extName));
        if (!model) return armError(res, 404, 'NotFound', `The entity ${extName} was not found.`);
        const b = vector('VirtualMachineScaleSetVMExtension_Get.json', '200');
        const mp = model.body['properties'] as Json;
        b['name'] = extName;
        b['id'] = `${base(rg)}/virtualMachineScaleSets/${parent}/virtualMachines/${instanceId}/extensions/${extName}`;
        b['properties'] = {
          autoUpgradeMinorVersion: mp['autoUpgradeMinorVersion'],
          provisioningState: mp['provisioningState'],
          publisher: mp['publisher'],
          type: mp['type'],
          typeHandlerVersion: mp['typeHandlerVersion'],
          settings: mp['settings'],
        };
        const iv = instanceViews.get(key(rg, parent, instanceId, extName));
        if (query['$expand']?.toLowerCase() === 'instanceview' && iv) (b['properties'] as Json)['instanceView'] = iv;
        return send(res, 200, b);
      }
    }
    armError(res, 404, 'NotFound', `No route for ${method} ${url.pathname}.`);
  }

  const server: Server = createServer({ cert: tls.certPem, key: tls.keyPem }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => handle(req, res, Buffer.concat(chunks).toString('utf8')));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  endpoint = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const credential: TokenCredential = {
    getToken: async (): Promise<AccessToken> => ({ token, expiresOnTimestamp: Date.now() + 3600_000 }),
  };

  return {
    endpoint,
    caPem: ca.certPem,
    subscriptionId,
    credential,
    requests,
    addVm: (rg, name, o = {}) => void vms.set(key(rg, name), { rg, name, location: o.location ?? 'westus', osType: o.osType ?? 'Linux' }),
    addVmss: (rg, name, o = {}) => void vmssInstances.set(key(rg, name), o.instances ?? ['0', '1']),
    seedVmssExtension: (rg, vmss, name, properties) => {
      const stored = { body: extensionBody('vmss', rg, vmss, name, properties, undefined), instanceView: undefined };
      (stored.body['properties'] as Json)['provisioningState'] = 'Succeeded';
      extensions.set(key(rg, 'vmss', vmss, name), stored);
    },
    scenario: (name, s) => void scenarios.set(name.toLowerCase(), s),
    setVmssInstanceView: (rg, vmss, id, ext, iv) => void instanceViews.set(key(rg, vmss, id, ext), iv),
    extension: (path) => {
      const parts = path.split('/');
      const stored = extensions.get(key(...parts));
      return stored ? structuredClone(stored.body) : undefined;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
