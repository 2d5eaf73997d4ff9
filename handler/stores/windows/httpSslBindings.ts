/**
 * http.sys SSL bindings through httpapi.dll (declared in native.ts): list them, and move the ones that point at a
 * replaced certificate to its successor, keeping every other field (app id, store name, check mode, flags).
 * `netsh http show sslcert` shows the same records. Setting an existing key fails with ERROR_ALREADY_EXISTS, so a
 * binding is moved by delete + set, and put back as it was when the set fails.
 */
import { KvvmError } from '../../errors.js';
import { hex32, loadHttpApi, loadNative, type HttpApi, type Native } from '../../platform/win32/native.js';
import { bindingAddress, configIdOf, encodeQuery, encodeSslSet, parseSslSet, type BindingKind, type SslBinding } from './httpSslRecords.js';

// winerror.h / http.h
const NO_ERROR = 0;
const ERROR_INSUFFICIENT_BUFFER = 122;
const ERROR_NO_MORE_ITEMS = 259;
const ERROR_FILE_NOT_FOUND = 2;
const HTTP_INITIALIZE_CONFIG = 0x2;
/** No machine has this many bindings; bounds the enumeration whatever the API answers. */
const MAX_BINDINGS = 65_536;

export interface HttpSslApi {
  list(kind: BindingKind): SslBinding[];
  /** Replaces `current` (same key) with `next`. */
  replace(current: SslBinding, next: SslBinding): void;
  close(): void;
}

export interface MovedBindings {
  moved: string[];
  failed: Array<{ address: string; error: string }>;
}

/** Moves every binding on `fromThumbprint` to `toThumbprint`. Pure over `api`, so tested with a recording api. */
export function moveBindings(api: HttpSslApi, fromThumbprint: string, toThumbprint: string): MovedBindings {
  const from = fromThumbprint.toUpperCase();
  const result: MovedBindings = { moved: [], failed: [] };
  for (const kind of ['ipport', 'hostport'] as const) {
    for (const binding of api.list(kind)) {
      if (binding.hash !== from) continue;
      const address = bindingAddress(binding);
      try {
        api.replace(binding, { ...binding, hash: toThumbprint.toUpperCase() });
        result.moved.push(address);
      } catch (err) {
        result.failed.push({ address, error: err instanceof Error ? err.message : String(err) });
      }
    }
  }
  return result;
}

function failure(call: string, code: number, what: string): KvvmError {
  return new KvvmError('http-sys-binding', `${call} failed with ${hex32(code)} while ${what}.`, {
    fix: 'Run kvvm as LocalSystem or an administrator; check the binding with "netsh http show sslcert".',
  });
}

export interface NativeArena {
  /** What koffi passes as `void *`. */
  ptr: unknown;
  /** The same memory seen from JS (writes land in native memory). */
  buf: Buffer;
  /** Its address: what pointers inside a record are relative to. */
  base: bigint;
}

/** Native memory for one record (koffi.alloc); the caller frees `ptr` with koffi.free. */
export function allocArena(native: Native, size: number): NativeArena {
  const ptr = native.koffi.alloc('uint8_t', size);
  const base = typeof ptr === 'bigint' ? ptr : native.koffi.address(ptr);
  return { ptr, buf: Buffer.from(native.koffi.view(ptr, size)), base };
}

/** The real api (Windows only): HttpInitialize once, then the configuration calls. */
export function createHttpSslApi(native: Native = loadNative(), http: HttpApi = loadHttpApi()): HttpSslApi {
  const { koffi } = native;
  const init = http.HttpInitialize({ HttpApiMajorVersion: 1, HttpApiMinorVersion: 0 }, HTTP_INITIALIZE_CONFIG, null) as number;
  if (init !== NO_ERROR) throw failure('HttpInitialize', init, 'opening the http.sys configuration');

  const arena = (size: number): NativeArena => allocArena(native, size);

  const queryOne = (kind: BindingKind, token: number): SslBinding | undefined => {
    const query = encodeQuery(kind, token);
    let size = 4096;
    for (let attempt = 0; attempt < 4; attempt++) {
      const out = arena(size);
      try {
        const returned = [0];
        const code = http.HttpQueryServiceConfiguration(null, configIdOf(kind), query, query.length, out.ptr, size, returned, null) as number;
        // ERROR_FILE_NOT_FOUND: no record of that kind at all (what Wine's stub always answers).
        if (code === ERROR_NO_MORE_ITEMS || code === ERROR_FILE_NOT_FOUND) return undefined;
        if (code === ERROR_INSUFFICIENT_BUFFER && (returned[0] ?? 0) > size) {
          size = returned[0]!;
          continue;
        }
        if (code !== NO_ERROR) throw failure('HttpQueryServiceConfiguration', code, `listing ${kind} bindings`);
        return parseSslSet(kind, Buffer.from(out.buf), out.base);
      } finally {
        koffi.free(out.ptr);
      }
    }
    throw failure('HttpQueryServiceConfiguration', ERROR_INSUFFICIENT_BUFFER, `reading ${kind} binding ${token}`);
  };

  const call = (fn: 'HttpSetServiceConfiguration' | 'HttpDeleteServiceConfiguration', binding: SslBinding): number => {
    let ptr: unknown;
    const record = encodeSslSet(binding, (size) => {
      const a = arena(size);
      ptr = a.ptr;
      return { buf: a.buf, base: a.base };
    });
    try {
      return http[fn](null, configIdOf(binding.kind), ptr, record.size, null) as number;
    } finally {
      koffi.free(ptr);
    }
  };

  return {
    list(kind) {
      const out: SslBinding[] = [];
      for (let token = 0; token < MAX_BINDINGS; token++) {
        const b = queryOne(kind, token);
        if (!b) break;
        out.push(b);
      }
      return out;
    },
    replace(current, next) {
      const address = bindingAddress(current);
      const deleted = call('HttpDeleteServiceConfiguration', current);
      if (deleted !== NO_ERROR) throw failure('HttpDeleteServiceConfiguration', deleted, `moving ${address}`);
      const set = call('HttpSetServiceConfiguration', next);
      if (set === NO_ERROR) return;
      // Put the old binding back: a binding on the old certificate beats no binding at all.
      const restored = call('HttpSetServiceConfiguration', current);
      throw failure(
        'HttpSetServiceConfiguration',
        set,
        `moving ${address}${restored === NO_ERROR ? ' (the old binding was restored)' : `; restoring it failed with ${hex32(restored)}`}`,
      );
    },
    close() {
      http.HttpTerminate(HTTP_INITIALIZE_CONFIG, null);
    },
  };
}
