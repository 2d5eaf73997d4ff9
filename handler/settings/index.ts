/** Public surface of the settings package. */
export { parseSettings, type SettingsResult, type ParseSettingsOptions } from './parse.js';
export { formatProblems, formatWarnings, type SettingsProblem } from './problems.js';
export { runValidateCommand, type ValidateIo } from './validateCommand.js';
export { DEFAULT_MSI_ENDPOINT } from './auth.js';
export { parseObservedUrl, parseMsiEndpoint } from './url.js';
