/**
 * Every native (Win32) call kvvm makes, declared once through koffi, and every constant, named after its C macro
 * (values from wincrypt.h, ncrypt.h, winnt.h, sddl.h). Nothing else in kvvm declares a native function.
 *
 * koffi is loaded lazily (loadNative), so Linux code can import the pure parts of the Windows store (flags, SDDL,
 * constants) without touching a DLL. Conventions (koffi 3): handles and contexts are opaque `void *` (BigInt) and
 * the SAME pointer is passed back; NULL is `null`; out-params are one-element arrays; Buffers stand in for
 * `BYTE *`; structs that carry pointers to other structs are built with koffi.alloc + koffi.encode.
 */
import { createRequire } from 'node:module';

// wincrypt.h: encoding and store providers
export const X509_ASN_ENCODING = 0x1;
export const PKCS_7_ASN_ENCODING = 0x10000;
export const CERT_STORE_PROV_SYSTEM_W = 10;
export const CERT_SYSTEM_STORE_CURRENT_USER = 0x10000;
export const CERT_SYSTEM_STORE_LOCAL_MACHINE = 0x20000;
export const CERT_STORE_OPEN_EXISTING_FLAG = 0x4000;
export const CERT_STORE_READONLY_FLAG = 0x8000;
export const CERT_STORE_DELETE_FLAG = 0x10;
export const CERT_DESCRIPTION_PROP_ID = 13;
export const CERT_STORE_CTRL_COMMIT = 3;
export const CERT_STORE_CTRL_COMMIT_FORCE_FLAG = 0x1;
// PFXImportCertStore flags
export const CRYPT_EXPORTABLE = 0x1;
export const CRYPT_MACHINE_KEYSET = 0x20;
export const PKCS12_PREFER_CNG_KSP = 0x100;
export const CRYPT_USER_KEYSET = 0x1000;
export const PKCS12_NO_PERSIST_KEY = 0x8000;
export const PKCS12_VIRTUAL_ISOLATION_KEY = 0x10000;
// CertAddCertificateContextToStore dispositions
export const CERT_STORE_ADD_USE_EXISTING = 2;
export const CERT_STORE_ADD_REPLACE_EXISTING_INHERIT_PROPERTIES = 5;
// CertFindCertificateInStore
export const CERT_FIND_SHA1_HASH = 0x10000;
// Certificate properties
export const CERT_KEY_PROV_INFO_PROP_ID = 2;
export const CERT_SHA1_HASH_PROP_ID = 3;
export const CERT_FRIENDLY_NAME_PROP_ID = 11;
export const CERT_RENEWAL_PROP_ID = 64;
// CryptAcquireCertificatePrivateKey
export const CRYPT_ACQUIRE_SILENT_FLAG = 0x40;
export const CRYPT_ACQUIRE_ALLOW_NCRYPT_KEY_FLAG = 0x10000;
export const CRYPT_ACQUIRE_PREFER_NCRYPT_KEY_FLAG = 0x20000;
export const CERT_NCRYPT_KEY_SPEC = 0xffffffff;
// CAPI key containers
export const PP_KEYSET_SEC_DESCR = 8;
export const CRYPT_DELETEKEYSET = 0x10;
// CNG (ncrypt.h)
export const NCRYPT_MACHINE_KEY_FLAG = 0x20;
export const NCRYPT_SILENT_FLAG = 0x40;
export const NCRYPT_SECURITY_DESCR_PROPERTY = 'Security Descr';
// winnt.h / sddl.h
export const DACL_SECURITY_INFORMATION = 0x4;
export const SDDL_REVISION_1 = 1;
// Chains (wincrypt.h)
export const HCCE_CURRENT_USER = 0;
export const HCCE_LOCAL_MACHINE = 1;
export const USAGE_MATCH_TYPE_AND = 0;
export const CERT_CHAIN_DISABLE_AIA = 0x2000;
export const CERT_CHAIN_CACHE_ONLY_URL_RETRIEVAL = 0x4;
export const CERT_CHAIN_POLICY_SSL = 4;
export const AUTHTYPE_SERVER = 2;
// HRESULTs
export const CRYPT_E_NOT_FOUND = 0x80092004;
export const ERROR_FILE_NOT_FOUND = 2;
export const NTE_BAD_ALGID = 0x80090008;
// Messages (wincrypt.h): protected settings are CMS EnvelopedData decrypted with CryptDecryptMessage
export const CRYPT_MESSAGE_SILENT_KEYSET_FLAG = 0x40;
// CertFindCertificateInStore by subject (CERT_COMPARE_NAME_STR_W << 16 | CERT_INFO_SUBJECT_FLAG)
export const CERT_FIND_SUBJECT_STR_W = 0x80007;
// Signing with a store key: CNG (ncrypt.h/bcrypt.h) or CAPI (wincrypt.h)
export const BCRYPT_PAD_PKCS1 = 0x2;
export const BCRYPT_SHA256_ALGORITHM = 'SHA256';
export const CALG_SHA_256 = 0x800c;
export const HP_HASHVAL = 0x2;
export const PROV_RSA_AES = 24;
export const MS_ENH_RSA_AES_PROV = 'Microsoft Enhanced RSA and AES Cryptographic Provider';
export const CRYPT_SILENT = 0x40;
export const AT_KEYEXCHANGE = 1;
export const AT_SIGNATURE = 2;
export const NTE_NO_KEY = 0x8009000d;
// Service Control Manager (winsvc.h, winnt.h, winerror.h)
export const SC_MANAGER_CONNECT = 0x1;
export const SC_MANAGER_CREATE_SERVICE = 0x2;
export const SERVICE_QUERY_CONFIG = 0x1;
export const SERVICE_CHANGE_CONFIG = 0x2;
export const SERVICE_QUERY_STATUS = 0x4;
export const SERVICE_START = 0x10;
export const SERVICE_STOP = 0x20;
export const DELETE = 0x10000;
export const SERVICE_WIN32_OWN_PROCESS = 0x10;
export const SERVICE_AUTO_START = 0x2;
export const SERVICE_DEMAND_START = 0x3;
export const SERVICE_NO_CHANGE = 0xffffffff;
export const SERVICE_ERROR_NORMAL = 0x1;
export const SERVICE_CONTROL_STOP = 0x1;
export const SERVICE_CONTROL_INTERROGATE = 0x4;
export const SERVICE_CONTROL_SHUTDOWN = 0x5;
export const SERVICE_ACCEPT_STOP = 0x1;
export const SERVICE_ACCEPT_SHUTDOWN = 0x4;
export const SERVICE_STOPPED = 0x1;
export const SERVICE_START_PENDING = 0x2;
export const SERVICE_STOP_PENDING = 0x3;
export const SERVICE_RUNNING = 0x4;
export const SERVICE_CONFIG_DESCRIPTION = 1;
export const SERVICE_CONFIG_FAILURE_ACTIONS = 2;
export const SERVICE_CONFIG_FAILURE_ACTIONS_FLAG = 4;
export const SC_ACTION_RESTART = 1;
export const SC_STATUS_PROCESS_INFO = 0;
export const NO_ERROR = 0;
export const ERROR_INVALID_LEVEL = 124;
export const ERROR_CALL_NOT_IMPLEMENTED = 120;
export const ERROR_SERVICE_ALREADY_RUNNING = 1056;
export const ERROR_SERVICE_DOES_NOT_EXIST = 1060;
export const ERROR_SERVICE_CANNOT_ACCEPT_CTRL = 1061;
export const ERROR_SERVICE_NOT_ACTIVE = 1062;
export const ERROR_SERVICE_SPECIFIC_ERROR = 1066;
export const ERROR_SERVICE_MARKED_FOR_DELETE = 1072;
export const ERROR_SERVICE_EXISTS = 1073;

/** A HANDLE, HCERTSTORE or PCCERT_CONTEXT: an address we only ever pass back. */
export type Handle = bigint;

interface Koffi {
  load(path: string): { func(proto: string): (...args: unknown[]) => unknown };
  struct(name: string, def: Record<string, unknown>): unknown;
  pointer(ref: unknown): unknown;
  alloc(type: unknown, length: number): bigint;
  free(ptr: unknown): void;
  encode(ptr: unknown, type: unknown, value: unknown): void;
  decode(ptr: unknown, type: unknown, len?: number): unknown;
  view(ptr: unknown, len: number): ArrayBuffer;
  address(ptr: unknown): bigint;
  sizeof(type: unknown): number;
  proto(signature: string): unknown;
  register(fn: (...args: never[]) => unknown, type: unknown): unknown;
  unregister(callback: unknown): void;
}

type Fn = (...args: unknown[]) => unknown;
/** A koffi function that can also run on a worker thread (`fn.async(...args, (err, result) => …)`). */
type AsyncFn = Fn & { async: (...args: unknown[]) => void };

export interface Native {
  koffi: Koffi;
  types: {
    CRYPT_DATA_BLOB: unknown;
    CERT_CONTEXT: unknown;
    CRYPT_KEY_PROV_INFO: unknown;
    CERT_CHAIN_PARA: unknown;
    CERT_CHAIN_CONTEXT_HEAD: unknown;
    CERT_CHAIN_POLICY_PARA: unknown;
    SSL_EXTRA_CERT_CHAIN_POLICY_PARA: unknown;
    CERT_CHAIN_POLICY_STATUS: unknown;
    CRYPT_DECRYPT_MESSAGE_PARA: unknown;
    BCRYPT_PKCS1_PADDING_INFO: unknown;
    SERVICE_STATUS: unknown;
    SERVICE_STATUS_PROCESS: unknown;
    SC_ACTION: unknown;
    SERVICE_FAILURE_ACTIONSW: unknown;
    SERVICE_FAILURE_ACTIONS_FLAG: unknown;
    SERVICE_DESCRIPTIONW: unknown;
    QUERY_SERVICE_CONFIGW: unknown;
    SERVICE_TABLE_ENTRYW: unknown;
    LPSERVICE_MAIN_FUNCTIONW: unknown;
    LPHANDLER_FUNCTION_EX: unknown;
    HTTPAPI_VERSION: unknown;
  };
  GetLastError: () => number;
  PFXImportCertStore: Fn;
  CertOpenStore: Fn;
  CertCloseStore: Fn;
  CertControlStore: Fn;
  CertEnumCertificatesInStore: Fn;
  CertFindCertificateInStore: Fn;
  CertAddCertificateContextToStore: Fn;
  CertAddEncodedCertificateToStore: Fn;
  CertDeleteCertificateFromStore: Fn;
  CertDuplicateCertificateContext: Fn;
  CertFreeCertificateContext: Fn;
  CertGetCertificateContextProperty: Fn;
  CertSetCertificateContextProperty: Fn;
  CertDeleteCertificateContextProperty: Fn;
  CertCreateCertificateContext: Fn;
  CryptAcquireCertificatePrivateKey: Fn;
  CryptSetProvParam: Fn;
  CryptReleaseContext: Fn;
  CryptAcquireContextW: Fn;
  CertGetCertificateChain: Fn;
  CertVerifyCertificateChainPolicy: Fn;
  CertFreeCertificateChain: Fn;
  NCryptSetProperty: Fn;
  NCryptFreeObject: Fn;
  NCryptOpenStorageProvider: Fn;
  NCryptOpenKey: Fn;
  NCryptDeleteKey: Fn;
  ConvertStringSecurityDescriptorToSecurityDescriptorW: Fn;
  LookupAccountNameW: Fn;
  ConvertSidToStringSidW: Fn;
  LocalFree: Fn;
  CryptDecryptMessage: Fn;
  CertFindCertificateInStoreString: Fn;
  NCryptSignHash: Fn;
  NCryptGetProperty: Fn;
  CryptCreateHash: Fn;
  CryptSetHashParam: Fn;
  CryptSignHashW: Fn;
  CryptDestroyHash: Fn;
  OpenSCManagerW: Fn;
  CreateServiceW: Fn;
  OpenServiceW: Fn;
  ChangeServiceConfigW: Fn;
  ChangeServiceConfig2W: Fn;
  QueryServiceConfigW: Fn;
  StartServiceW: Fn;
  ControlService: Fn;
  QueryServiceStatusEx: Fn;
  DeleteService: Fn;
  CloseServiceHandle: Fn;
  StartServiceCtrlDispatcherW: AsyncFn;
  RegisterServiceCtrlHandlerExW: Fn;
  SetServiceStatus: Fn;
}

let loaded: Native | undefined;

/** Loads koffi and the DLLs once per process. Only callable on Windows (or Windows Node under Wine). */
export function loadNative(): Native {
  if (loaded) return loaded;
  if (process.platform !== 'win32') throw new Error(`kvvm: the Windows certificate store needs Windows (this is ${process.platform})`);
  // Required here, when first needed, so Linux never loads koffi; spelled require('koffi') so knip sees the dependency.
  const require = createRequire(import.meta.url);
  const koffi = require('koffi') as Koffi;
  const crypt32 = koffi.load('crypt32.dll');
  const advapi32 = koffi.load('advapi32.dll');
  const kernel32 = koffi.load('kernel32.dll');
  const ncrypt = koffi.load('ncrypt.dll');

  const CRYPT_DATA_BLOB = koffi.struct('CRYPT_DATA_BLOB', { cbData: 'uint32_t', pbData: 'void *' });
  const types = {
    CRYPT_DATA_BLOB,
    CERT_CONTEXT: koffi.struct('CERT_CONTEXT', {
      dwCertEncodingType: 'uint32_t',
      pbCertEncoded: 'void *',
      cbCertEncoded: 'uint32_t',
      pCertInfo: 'void *',
      hCertStore: 'void *',
    }),
    CRYPT_KEY_PROV_INFO: koffi.struct('CRYPT_KEY_PROV_INFO', {
      pwszContainerName: 'void *',
      pwszProvName: 'void *',
      dwProvType: 'uint32_t',
      dwFlags: 'uint32_t',
      cProvParam: 'uint32_t',
      rgProvParam: 'void *',
      dwKeySpec: 'uint32_t',
    }),
    CERT_CHAIN_PARA: koffi.struct('CERT_CHAIN_PARA', {
      cbSize: 'uint32_t',
      dwType: 'uint32_t',
      cUsageIdentifier: 'uint32_t',
      rgpszUsageIdentifier: 'const char **',
    }),
    CERT_CHAIN_CONTEXT_HEAD: koffi.struct('CERT_CHAIN_CONTEXT_HEAD', {
      cbSize: 'uint32_t',
      dwErrorStatus: 'uint32_t',
      dwInfoStatus: 'uint32_t',
      cChain: 'uint32_t',
    }),
    SSL_EXTRA_CERT_CHAIN_POLICY_PARA: koffi.struct('SSL_EXTRA_CERT_CHAIN_POLICY_PARA', {
      cbSize: 'uint32_t',
      dwAuthType: 'uint32_t',
      fdwChecks: 'uint32_t',
      pwszServerName: 'const char16_t *',
    }),
    CERT_CHAIN_POLICY_PARA: koffi.struct('CERT_CHAIN_POLICY_PARA', {
      cbSize: 'uint32_t',
      dwFlags: 'uint32_t',
      pvExtraPolicyPara: 'SSL_EXTRA_CERT_CHAIN_POLICY_PARA *',
    }),
    CERT_CHAIN_POLICY_STATUS: koffi.struct('CERT_CHAIN_POLICY_STATUS', {
      cbSize: 'uint32_t',
      dwError: 'uint32_t',
      lChainIndex: 'int32_t',
      lElementIndex: 'int32_t',
      pvExtraPolicyStatus: 'void *',
    }),
    CRYPT_DECRYPT_MESSAGE_PARA: koffi.struct('CRYPT_DECRYPT_MESSAGE_PARA', {
      cbSize: 'uint32_t',
      dwMsgAndCertEncodingType: 'uint32_t',
      cCertStore: 'uint32_t',
      rghCertStore: 'void *',
      dwFlags: 'uint32_t',
    }),
    BCRYPT_PKCS1_PADDING_INFO: koffi.struct('BCRYPT_PKCS1_PADDING_INFO', { pszAlgId: 'const char16_t *' }),
    SERVICE_STATUS: koffi.struct('SERVICE_STATUS', {
      dwServiceType: 'uint32_t',
      dwCurrentState: 'uint32_t',
      dwControlsAccepted: 'uint32_t',
      dwWin32ExitCode: 'uint32_t',
      dwServiceSpecificExitCode: 'uint32_t',
      dwCheckPoint: 'uint32_t',
      dwWaitHint: 'uint32_t',
    }),
    SERVICE_STATUS_PROCESS: koffi.struct('SERVICE_STATUS_PROCESS', {
      dwServiceType: 'uint32_t',
      dwCurrentState: 'uint32_t',
      dwControlsAccepted: 'uint32_t',
      dwWin32ExitCode: 'uint32_t',
      dwServiceSpecificExitCode: 'uint32_t',
      dwCheckPoint: 'uint32_t',
      dwWaitHint: 'uint32_t',
      dwProcessId: 'uint32_t',
      dwServiceFlags: 'uint32_t',
    }),
    SC_ACTION: koffi.struct('SC_ACTION', { Type: 'int32_t', Delay: 'uint32_t' }),
    SERVICE_FAILURE_ACTIONSW: koffi.struct('SERVICE_FAILURE_ACTIONSW', {
      dwResetPeriod: 'uint32_t',
      lpRebootMsg: 'const char16_t *',
      lpCommand: 'const char16_t *',
      cActions: 'uint32_t',
      lpsaActions: 'SC_ACTION *',
    }),
    SERVICE_FAILURE_ACTIONS_FLAG: koffi.struct('SERVICE_FAILURE_ACTIONS_FLAG', { fFailureActionsOnNonCrashFailures: 'int32_t' }),
    SERVICE_DESCRIPTIONW: koffi.struct('SERVICE_DESCRIPTIONW', { lpDescription: 'const char16_t *' }),
    QUERY_SERVICE_CONFIGW: koffi.struct('QUERY_SERVICE_CONFIGW', {
      dwServiceType: 'uint32_t',
      dwStartType: 'uint32_t',
      dwErrorControl: 'uint32_t',
      lpBinaryPathName: 'void *',
      lpLoadOrderGroup: 'void *',
      dwTagId: 'uint32_t',
      lpDependencies: 'void *',
      lpServiceStartName: 'void *',
      lpDisplayName: 'void *',
    }),
    LPSERVICE_MAIN_FUNCTIONW: koffi.pointer(koffi.proto('void __stdcall SERVICE_MAIN_FUNCTIONW(uint32_t dwNumServicesArgs, void *lpServiceArgVectors)')),
    LPHANDLER_FUNCTION_EX: koffi.pointer(koffi.proto('uint32_t __stdcall HANDLER_FUNCTION_EX(uint32_t dwControl, uint32_t dwEventType, void *lpEventData, void *lpContext)')),
    SERVICE_TABLE_ENTRYW: koffi.struct('SERVICE_TABLE_ENTRYW', { lpServiceName: 'const char16_t *', lpServiceProc: 'SERVICE_MAIN_FUNCTIONW *' }),
    HTTPAPI_VERSION: koffi.struct('HTTPAPI_VERSION', { HttpApiMajorVersion: 'uint16_t', HttpApiMinorVersion: 'uint16_t' }),
  };

  const c = (p: string): Fn => crypt32.func(p);
  const a = (p: string): Fn => advapi32.func(p);
  loaded = {
    koffi,
    types,
    GetLastError: kernel32.func('uint32_t __stdcall GetLastError()') as () => number,
    LocalFree: kernel32.func('void * __stdcall LocalFree(void *hMem)'),
    PFXImportCertStore: c('void * __stdcall PFXImportCertStore(CRYPT_DATA_BLOB *pPFX, const char16_t *szPassword, uint32_t dwFlags)'),
    CertOpenStore: c('void * __stdcall CertOpenStore(uintptr_t lpszStoreProvider, uint32_t dwEncodingType, void *hCryptProv, uint32_t dwFlags, const char16_t *pvPara)'),
    CertCloseStore: c('int __stdcall CertCloseStore(void *hCertStore, uint32_t dwFlags)'),
    CertControlStore: c('int __stdcall CertControlStore(void *hCertStore, uint32_t dwFlags, uint32_t dwCtrlType, void *pvCtrlPara)'),
    CertEnumCertificatesInStore: c('void * __stdcall CertEnumCertificatesInStore(void *hCertStore, void *pPrevCertContext)'),
    CertFindCertificateInStore: c(
      'void * __stdcall CertFindCertificateInStore(void *hCertStore, uint32_t dwCertEncodingType, uint32_t dwFindFlags, uint32_t dwFindType, CRYPT_DATA_BLOB *pvFindPara, void *pPrevCertContext)',
    ),
    CertAddCertificateContextToStore: c(
      'int __stdcall CertAddCertificateContextToStore(void *hCertStore, void *pCertContext, uint32_t dwAddDisposition, _Out_ void **ppStoreContext)',
    ),
    CertAddEncodedCertificateToStore: c(
      'int __stdcall CertAddEncodedCertificateToStore(void *hCertStore, uint32_t dwCertEncodingType, void *pbCertEncoded, uint32_t cbCertEncoded, uint32_t dwAddDisposition, void *ppCertContext)',
    ),
    CertDeleteCertificateFromStore: c('int __stdcall CertDeleteCertificateFromStore(void *pCertContext)'),
    CertDuplicateCertificateContext: c('void * __stdcall CertDuplicateCertificateContext(void *pCertContext)'),
    CertFreeCertificateContext: c('int __stdcall CertFreeCertificateContext(void *pCertContext)'),
    CertCreateCertificateContext: c('void * __stdcall CertCreateCertificateContext(uint32_t dwCertEncodingType, void *pbCertEncoded, uint32_t cbCertEncoded)'),
    CertGetCertificateContextProperty: c('int __stdcall CertGetCertificateContextProperty(void *pCertContext, uint32_t dwPropId, void *pvData, _Inout_ uint32_t *pcbData)'),
    CertSetCertificateContextProperty: c('int __stdcall CertSetCertificateContextProperty(void *pCertContext, uint32_t dwPropId, uint32_t dwFlags, CRYPT_DATA_BLOB *pvData)'),
    CertDeleteCertificateContextProperty: c('int __stdcall CertSetCertificateContextProperty(void *pCertContext, uint32_t dwPropId, uint32_t dwFlags, void *pvData)'),
    CryptAcquireCertificatePrivateKey: c(
      'int __stdcall CryptAcquireCertificatePrivateKey(void *pCert, uint32_t dwFlags, void *pvParameters, _Out_ uintptr_t *phKey, _Out_ uint32_t *pdwKeySpec, _Out_ int *pfCallerFreeProv)',
    ),
    CertGetCertificateChain: c(
      'int __stdcall CertGetCertificateChain(uintptr_t hChainEngine, void *pCertContext, void *pTime, void *hAdditionalStore, CERT_CHAIN_PARA *pChainPara, uint32_t dwFlags, void *pvReserved, _Out_ void **ppChainContext)',
    ),
    CertVerifyCertificateChainPolicy: c(
      'int __stdcall CertVerifyCertificateChainPolicy(uintptr_t pszPolicyOID, void *pChainContext, CERT_CHAIN_POLICY_PARA *pPolicyPara, _Inout_ CERT_CHAIN_POLICY_STATUS *pPolicyStatus)',
    ),
    CertFreeCertificateChain: c('void __stdcall CertFreeCertificateChain(void *pChainContext)'),
    CryptSetProvParam: advapi32.func('int __stdcall CryptSetProvParam(uintptr_t hProv, uint32_t dwParam, void *pbData, uint32_t dwFlags)'),
    CryptReleaseContext: advapi32.func('int __stdcall CryptReleaseContext(uintptr_t hProv, uint32_t dwFlags)'),
    CryptAcquireContextW: advapi32.func(
      'int __stdcall CryptAcquireContextW(_Out_ uintptr_t *phProv, const char16_t *szContainer, const char16_t *szProvider, uint32_t dwProvType, uint32_t dwFlags)',
    ),
    ConvertStringSecurityDescriptorToSecurityDescriptorW: advapi32.func(
      'int __stdcall ConvertStringSecurityDescriptorToSecurityDescriptorW(const char16_t *StringSecurityDescriptor, uint32_t StringSDRevision, _Out_ void **SecurityDescriptor, _Out_ uint32_t *SecurityDescriptorSize)',
    ),
    LookupAccountNameW: advapi32.func(
      'int __stdcall LookupAccountNameW(const char16_t *lpSystemName, const char16_t *lpAccountName, void *Sid, _Inout_ uint32_t *cbSid, void *ReferencedDomainName, _Inout_ uint32_t *cchReferencedDomainName, _Out_ uint32_t *peUse)',
    ),
    ConvertSidToStringSidW: advapi32.func('int __stdcall ConvertSidToStringSidW(void *Sid, _Out_ void **StringSid)'),
    NCryptSetProperty: ncrypt.func('int32_t __stdcall NCryptSetProperty(uintptr_t hObject, const char16_t *pszProperty, void *pbInput, uint32_t cbInput, uint32_t dwFlags)'),
    NCryptFreeObject: ncrypt.func('int32_t __stdcall NCryptFreeObject(uintptr_t hObject)'),
    NCryptOpenStorageProvider: ncrypt.func('int32_t __stdcall NCryptOpenStorageProvider(_Out_ uintptr_t *phProvider, const char16_t *pszProviderName, uint32_t dwFlags)'),
    NCryptOpenKey: ncrypt.func(
      'int32_t __stdcall NCryptOpenKey(uintptr_t hProvider, _Out_ uintptr_t *phKey, const char16_t *pszKeyName, uint32_t dwLegacyKeySpec, uint32_t dwFlags)',
    ),
    NCryptDeleteKey: ncrypt.func('int32_t __stdcall NCryptDeleteKey(uintptr_t hKey, uint32_t dwFlags)'),
    NCryptSignHash: ncrypt.func(
      'int32_t __stdcall NCryptSignHash(uintptr_t hKey, BCRYPT_PKCS1_PADDING_INFO *pPaddingInfo, void *pbHashValue, uint32_t cbHashValue, void *pbSignature, uint32_t cbSignature, _Out_ uint32_t *pcbResult, uint32_t dwFlags)',
    ),
    NCryptGetProperty: ncrypt.func(
      'int32_t __stdcall NCryptGetProperty(uintptr_t hObject, const char16_t *pszProperty, void *pbOutput, uint32_t cbOutput, _Out_ uint32_t *pcbResult, uint32_t dwFlags)',
    ),
    CryptDecryptMessage: c(
      'int __stdcall CryptDecryptMessage(CRYPT_DECRYPT_MESSAGE_PARA *pDecryptPara, void *pbEncryptedBlob, uint32_t cbEncryptedBlob, void *pbDecrypted, _Inout_ uint32_t *pcbDecrypted, void *ppXchgCert)',
    ),
    CertFindCertificateInStoreString: c(
      'void * __stdcall CertFindCertificateInStore(void *hCertStore, uint32_t dwCertEncodingType, uint32_t dwFindFlags, uint32_t dwFindType, const char16_t *pvFindPara, void *pPrevCertContext)',
    ),
    CryptCreateHash: a('int __stdcall CryptCreateHash(uintptr_t hProv, uint32_t Algid, uintptr_t hKey, uint32_t dwFlags, _Out_ uintptr_t *phHash)'),
    CryptSetHashParam: a('int __stdcall CryptSetHashParam(uintptr_t hHash, uint32_t dwParam, void *pbData, uint32_t dwFlags)'),
    CryptSignHashW: a(
      'int __stdcall CryptSignHashW(uintptr_t hHash, uint32_t dwKeySpec, const char16_t *szDescription, uint32_t dwFlags, void *pbSignature, _Inout_ uint32_t *pdwSigLen)',
    ),
    CryptDestroyHash: a('int __stdcall CryptDestroyHash(uintptr_t hHash)'),
    OpenSCManagerW: a('void * __stdcall OpenSCManagerW(const char16_t *lpMachineName, const char16_t *lpDatabaseName, uint32_t dwDesiredAccess)'),
    CreateServiceW: a(
      'void * __stdcall CreateServiceW(void *hSCManager, const char16_t *lpServiceName, const char16_t *lpDisplayName, uint32_t dwDesiredAccess, uint32_t dwServiceType, uint32_t dwStartType, uint32_t dwErrorControl, const char16_t *lpBinaryPathName, const char16_t *lpLoadOrderGroup, void *lpdwTagId, const char16_t *lpDependencies, const char16_t *lpServiceStartName, const char16_t *lpPassword)',
    ),
    OpenServiceW: a('void * __stdcall OpenServiceW(void *hSCManager, const char16_t *lpServiceName, uint32_t dwDesiredAccess)'),
    ChangeServiceConfigW: a(
      'int __stdcall ChangeServiceConfigW(void *hService, uint32_t dwServiceType, uint32_t dwStartType, uint32_t dwErrorControl, const char16_t *lpBinaryPathName, const char16_t *lpLoadOrderGroup, void *lpdwTagId, const char16_t *lpDependencies, const char16_t *lpServiceStartName, const char16_t *lpPassword, const char16_t *lpDisplayName)',
    ),
    ChangeServiceConfig2W: a('int __stdcall ChangeServiceConfig2W(void *hService, uint32_t dwInfoLevel, void *lpInfo)'),
    QueryServiceConfigW: a('int __stdcall QueryServiceConfigW(void *hService, void *lpServiceConfig, uint32_t cbBufSize, _Out_ uint32_t *pcbBytesNeeded)'),
    StartServiceW: a('int __stdcall StartServiceW(void *hService, uint32_t dwNumServiceArgs, void *lpServiceArgVectors)'),
    ControlService: a('int __stdcall ControlService(void *hService, uint32_t dwControl, _Out_ SERVICE_STATUS *lpServiceStatus)'),
    QueryServiceStatusEx: a(
      'int __stdcall QueryServiceStatusEx(void *hService, uint32_t InfoLevel, _Out_ SERVICE_STATUS_PROCESS *lpBuffer, uint32_t cbBufSize, _Out_ uint32_t *pcbBytesNeeded)',
    ),
    DeleteService: a('int __stdcall DeleteService(void *hService)'),
    CloseServiceHandle: a('int __stdcall CloseServiceHandle(void *hSCObject)'),
    StartServiceCtrlDispatcherW: a('int __stdcall StartServiceCtrlDispatcherW(SERVICE_TABLE_ENTRYW *lpServiceStartTable)') as AsyncFn,
    RegisterServiceCtrlHandlerExW: a('void * __stdcall RegisterServiceCtrlHandlerExW(const char16_t *lpServiceName, HANDLER_FUNCTION_EX *lpHandlerProc, void *lpContext)'),
    SetServiceStatus: a('int __stdcall SetServiceStatus(void *hServiceStatus, SERVICE_STATUS *lpServiceStatus)'),
  };
  return loaded;
}

export interface HttpApi {
  HttpInitialize: Fn;
  HttpTerminate: Fn;
  HttpQueryServiceConfiguration: Fn;
  HttpSetServiceConfiguration: Fn;
  HttpDeleteServiceConfiguration: Fn;
}

let loadedHttp: HttpApi | undefined;

/**
 * httpapi.dll (http.sys configuration, for updateBindings), loaded only when a binding is moved so the store and
 * the service never load it. Records are byte arenas from koffi.alloc (httpSslRecords.ts).
 */
export function loadHttpApi(): HttpApi {
  if (loadedHttp) return loadedHttp;
  const n = loadNative();
  const httpapi = n.koffi.load('httpapi.dll');
  const h = (p: string): Fn => httpapi.func(p);
  loadedHttp = {
    HttpInitialize: h('uint32_t __stdcall HttpInitialize(HTTPAPI_VERSION Version, uint32_t Flags, void *pReserved)'),
    HttpTerminate: h('uint32_t __stdcall HttpTerminate(uint32_t Flags, void *pReserved)'),
    HttpQueryServiceConfiguration: h(
      'uint32_t __stdcall HttpQueryServiceConfiguration(void *ServiceHandle, int ConfigId, void *pInput, uint32_t InputLength, void *pOutput, uint32_t OutputLength, _Out_ uint32_t *pReturnLength, void *pOverlapped)',
    ),
    HttpSetServiceConfiguration: h(
      'uint32_t __stdcall HttpSetServiceConfiguration(void *ServiceHandle, int ConfigId, void *pConfigInformation, uint32_t ConfigInformationLength, void *pOverlapped)',
    ),
    HttpDeleteServiceConfiguration: h(
      'uint32_t __stdcall HttpDeleteServiceConfiguration(void *ServiceHandle, int ConfigId, void *pConfigInformation, uint32_t ConfigInformationLength, void *pOverlapped)',
    ),
  };
  return loadedHttp;
}

/** HRESULT_FROM_WIN32 for a GetLastError value (values that already are HRESULTs pass through). */
export function hresultOf(lastError: number): number {
  const e = lastError >>> 0;
  return e === 0 || (e & 0x80000000) !== 0 ? e : ((e & 0xffff) | 0x80070000) >>> 0;
}

export function hex32(value: number): string {
  return `0x${(value >>> 0).toString(16).toUpperCase().padStart(8, '0')}`;
}
