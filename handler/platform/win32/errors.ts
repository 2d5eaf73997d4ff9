import { KvvmError } from '../../errors.js';
import { hex32, hresultOf } from './native.js';

/** HRESULTs an operator can act on, with the fix the status file shows. */
const FIXES: Record<number, string> = {
  0x80070005: 'Run the kvvm service as LocalSystem (LocalMachine stores and machine keys need administrator rights).',
  0x80090016: 'The private key container is missing; remove the certificate from the store and let kvvm install it again.',
  0x80092004: 'The certificate is no longer in the store; kvvm installs it again on the next poll.',
};

/** "<call> failed with HRESULT 0x…", for messages that wrap a Win32 failure in another reason. */
export function win32Failure(call: string, lastError: number): string {
  return `${call} failed with HRESULT ${hex32(hresultOf(lastError))}`;
}

/** A failed Win32 call, named with its HRESULT (certtostore convention), e.g. "PFXImportCertStore failed: 0x80070005". */
export function win32Error(call: string, lastError: number, action: string): KvvmError {
  const hr = hresultOf(lastError);
  return new KvvmError('windows-api', `Cannot ${action}: ${win32Failure(call, lastError)}.`, {
    fix: FIXES[hr] ?? 'Check the Windows event log (Application, CAPI2) for the cause; kvvm retries on the next poll.',
    code: hr === 0x80070005 ? 1 : -1,
  });
}
