/**
 * HandlerManifest.json, as the agents read it: an array whose element [0] has `handlerManifest` with the five
 * command lines. The Linux agent parses the optional booleans leniently (anything but true/"true" is false) and
 * only logs a warning for a non-boolean; we validate OUR manifest strictly so a typo ("ture", 1) fails the build
 * instead of silently turning a feature off on every VM.
 */

const MANIFEST_COMMANDS = ['installCommand', 'uninstallCommand', 'updateCommand', 'enableCommand', 'disableCommand'] as const;
const MANIFEST_BOOLEANS = ['rebootAfterInstall', 'reportHeartbeat', 'continueOnUpdateFailure', 'supportsMultipleExtensions'] as const;

interface HandlerManifest {
  name: string | undefined;
  commands: Record<(typeof MANIFEST_COMMANDS)[number], string>;
  rebootAfterInstall: boolean;
  reportHeartbeat: boolean;
  continueOnUpdateFailure: boolean;
  supportsMultipleExtensions: boolean;
  /** The agent's default when absent is UpdateWithInstall. */
  updateWithInstall: boolean;
}

export type ManifestValidation = { ok: true; manifest: HandlerManifest } | { ok: false; reason: string };

export function validateHandlerManifest(doc: unknown): ManifestValidation {
  if (!Array.isArray(doc) || doc.length === 0) return { ok: false, reason: 'the manifest must be a non-empty JSON array' };
  const first: unknown = doc[0];
  if (!isObject(first)) return { ok: false, reason: 'element [0] must be an object' };
  const hm = first['handlerManifest'];
  if (!isObject(hm)) return { ok: false, reason: '"handlerManifest" is missing or not an object' };

  const problems: string[] = [];
  const commands = {} as HandlerManifest['commands'];
  for (const key of MANIFEST_COMMANDS) {
    const value = hm[key];
    if (typeof value !== 'string' || value.trim() === '') problems.push(`"${key}" is required and must be a non-empty string`);
    else commands[key] = value;
  }
  const flags = {} as Record<(typeof MANIFEST_BOOLEANS)[number], boolean>;
  for (const key of MANIFEST_BOOLEANS) {
    const parsed = parseBoolean(hm[key]);
    if (parsed === 'invalid') problems.push(`"${key}" must be true, false, "true" or "false" (got ${JSON.stringify(hm[key])})`);
    else flags[key] = parsed;
  }
  const updateMode = hm['updateMode'];
  if (updateMode !== undefined && (typeof updateMode !== 'string' || !/^update(with|without)install$/i.test(updateMode))) {
    problems.push(`"updateMode" must be "UpdateWithInstall" or "UpdateWithoutInstall" (got ${JSON.stringify(updateMode)})`);
  }
  if (problems.length > 0) return { ok: false, reason: problems.join('; ') };
  return {
    ok: true,
    manifest: {
      name: typeof first['name'] === 'string' ? first['name'] : undefined,
      commands,
      ...flags,
      updateWithInstall: typeof updateMode !== 'string' || updateMode.toLowerCase() === 'updatewithinstall',
    },
  };
}

/** JSON boolean, or the string "true"/"false" in any case (the agent compares value.lower() == "true"). */
function parseBoolean(value: unknown): boolean | 'invalid' {
  if (value === undefined) return false;
  if (typeof value === 'boolean') return value;
  if (typeof value === 'string' && /^(true|false)$/i.test(value)) return value.toLowerCase() === 'true';
  return 'invalid';
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
