/**
 * loggingSettings (KeyVaultForLinux 3.x): forward the service's log records to a fluentd endpoint.
 * KeyVaultForLinux documents exactly one logger ("fluentd"), one format ("forward") and a tcp:// endpoint;
 * this turns them into LoggingConfig for the service's log transport. Windows has no such setting: it is
 * accepted there (one template often serves both platforms) and ignored with a warning.
 */
import type { LoggingConfig, LoggingTarget, SettingsWarning } from './config.js';
import { problem, show, type SettingsProblem } from './problems.js';
import { asObject, asString } from './values.js';

const BASE = '/loggingSettings';
const DEFAULT_FLUENTD_ENDPOINT = 'tcp://localhost:24224';
const DEFAULT_FLUENTD_SERVICE_NAME = 'akvvm_service';
/** fluentd tags are dot-separated words; a tag with spaces or slashes is rejected by most match rules. */
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

interface Sink {
  problems: SettingsProblem[];
  warnings: SettingsWarning[];
}

function endpoint(raw: string, sink: Sink): LoggingTarget | undefined {
  const path = `${BASE}/endpoint`;
  const text = raw.trim();
  // Azure's own Linux images forward to the mdsd socket (unix:///var/run/mdsd/default_fluent.socket).
  const unix = /^unix:\/\/(\/[^\0]+)$/.exec(text);
  if (unix?.[1] !== undefined) return { kind: 'unix', path: unix[1] };
  const m = /^tcp:\/\/(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})\/?$/.exec(text);
  const port = m ? Number(m[2]) : NaN;
  if (!m || m[1] === undefined || port < 1 || port > 65535) {
    sink.problems.push(
      problem(
        path,
        'logging-endpoint-invalid',
        `loggingSettings.endpoint ${show(raw)} is not a fluentd forward endpoint; expected tcp://<host>:<port> or unix://<absolute socket path>.`,
        `Write it as "${DEFAULT_FLUENTD_ENDPOINT}" (the fluentd forward input's address), or remove loggingSettings.`,
      ),
    );
    return undefined;
  }
  return { kind: 'tcp', host: m[1].replace(/^\[|\]$/g, ''), port };
}

/** `raw` is data.loggingSettings (already shape-checked by the schema). Undefined when absent or unusable. */
export function normalizeLogging(raw: unknown, platform: 'linux' | 'win32', sink: Sink): LoggingConfig | undefined {
  const o = asObject(raw);
  if (o === undefined) return undefined;
  if (platform === 'win32') {
    sink.warnings.push({ path: BASE, message: 'loggingSettings is a KeyVaultForLinux setting; it is ignored on Windows (logs go to the extension log folder).' });
    return undefined;
  }
  const logger = asString(o['logger']) ?? 'fluentd';
  if (logger.trim().toLowerCase() !== 'fluentd') {
    sink.problems.push(
      problem(
        `${BASE}/logger`,
        'logging-logger-unsupported',
        `loggingSettings.logger is ${show(logger)}; the only logger KeyVaultForLinux supports is "fluentd".`,
        'Set "logger": "fluentd", or remove loggingSettings to log only to the extension log folder.',
      ),
    );
  }
  const format = asString(o['format']) ?? 'forward';
  if (format.trim().toLowerCase() !== 'forward') {
    sink.problems.push(
      problem(
        `${BASE}/format`,
        'logging-format-unsupported',
        `loggingSettings.format is ${show(format)}; the only format is "forward" (fluentd's forward protocol).`,
        'Set "format": "forward".',
      ),
    );
  }
  const serviceName = (asString(o['servicename']) ?? DEFAULT_FLUENTD_SERVICE_NAME).trim();
  if (!TAG.test(serviceName)) {
    sink.problems.push(
      problem(
        `${BASE}/servicename`,
        'logging-servicename-invalid',
        `loggingSettings.servicename ${show(asString(o['servicename']))} is not a usable fluentd tag (letters, digits, ".", "_", "-"; at most 128).`,
        `Use a tag such as "${DEFAULT_FLUENTD_SERVICE_NAME}".`,
      ),
    );
  }
  const endpointText = asString(o['endpoint']) ?? DEFAULT_FLUENTD_ENDPOINT;
  const target = endpoint(endpointText, sink);
  if (target === undefined || sink.problems.some((p) => p.path.startsWith(BASE))) return undefined;
  return { logger: 'fluentd', format: 'forward', endpoint: endpointText.trim(), target, serviceName };
}
