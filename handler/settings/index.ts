/** Public surface of the settings package. */
export { parseSettings } from './parse.js';
export { formatProblems, formatWarnings } from './problems.js';
