/**
 * Directories the machine shares with everyone else. kvvm makes its store directory private (0700/0710), so any of
 * these as certificateStoreLocation would lock other software out (a 0700 /etc/ssl/certs breaks every TLS client,
 * /tmp would lose its sticky bit) or mix private keys into a public place. Refused by the settings check (with
 * the JSON path) and again by the PEM store, which is also handed paths that did not come from settings.
 * A subdirectory (/etc/ssl/private/myapp) is not in the list: it is checked like any other location.
 */
export const SHARED_DIRECTORIES: readonly string[] = [
  '/',
  '/bin',
  '/boot',
  '/dev',
  '/dev/shm',
  '/etc',
  '/etc/pki',
  '/etc/pki/tls',
  '/etc/pki/tls/certs',
  '/etc/pki/tls/private',
  '/etc/pki/ca-trust',
  '/etc/ssl',
  '/etc/ssl/certs',
  '/etc/ssl/private',
  '/home',
  '/lib',
  '/lib32',
  '/lib64',
  '/media',
  '/mnt',
  '/opt',
  '/proc',
  '/root',
  '/run',
  '/run/user',
  '/sbin',
  '/snap',
  '/srv',
  '/sys',
  '/tmp',
  '/usr',
  '/usr/bin',
  '/usr/lib',
  '/usr/local',
  '/usr/local/bin',
  '/usr/local/share/ca-certificates',
  '/usr/sbin',
  '/usr/share',
  '/usr/share/ca-certificates',
  '/var',
  '/var/cache',
  '/var/lib',
  '/var/lib/waagent',
  '/var/local',
  '/var/lock',
  '/var/log',
  '/var/mail',
  '/var/opt',
  '/var/run',
  '/var/spool',
  '/var/tmp',
  '/var/www',
];

const SHARED = new Set(SHARED_DIRECTORIES);

/** `dir` must be absolute and normalised (no trailing slash, no "." or ".."). */
export function isSharedDirectory(dir: string): boolean {
  return SHARED.has(dir === '' ? '/' : dir);
}
