/**
 * Worker-thread entry of the parser pool (parserPool.ts): parses certificate secrets off the service's main
 * thread. KeyObject and X509Certificate cross back by structured clone (the key stays in process memory).
 */
import { readlinkSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { KvvmError } from '../errors.js';
import type { Reason } from '../reasons.js';
import { parseCertificateSecret } from './parse.js';

export interface ParseRequest {
  id: number;
  value: string;
  contentType: string | undefined;
}

export type ParseReply =
  | { kind: 'ready'; tid: number | undefined }
  | { kind: 'done'; id: number; material: ReturnType<typeof parseCertificateSecret> }
  | { kind: 'failed'; id: number; reason: Reason; message: string; fix: string | undefined; code: number };

/** This thread's kernel id, so the pool can read its CPU time from /proc (Linux only). */
function threadId(): number | undefined {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    return Number.isInteger(tid) ? tid : undefined;
  } catch {
    return undefined;
  }
}

const port = parentPort;
if (port) {
  port.postMessage({ kind: 'ready', tid: threadId() } satisfies ParseReply);
  port.on('message', (request: ParseRequest) => {
    let reply: ParseReply;
    try {
      reply = { kind: 'done', id: request.id, material: parseCertificateSecret(request.value, request.contentType) };
    } catch (err) {
      // parseCertificateSecret throws only KvvmError; its cause stays here (it may quote parser internals).
      const e =
        err instanceof KvvmError ? err : new KvvmError('malformed-certificate', 'The certificate secret could not be read.', { fix: 'Re-import the certificate into Key Vault.' });
      reply = { kind: 'failed', id: request.id, reason: e.reason, message: e.message, fix: e.fix, code: e.code };
    }
    port.postMessage(reply);
  });
}
