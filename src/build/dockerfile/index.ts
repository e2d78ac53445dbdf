// The Dockerfile front end, as the builder imports it.
export type * from './ast.js';
export { parseDockerfile, type ParseOptions } from './parse.js';
export { planStages, expandStage, copySource, platformArgs, PROXY_ARGS, type PlanOptions } from './stages.js';
export { expandInstruction } from './expand.js';
export { processWord, processWords } from './lex.js';
export { printableDockerfile, type PrintedDockerfile, type PrintedStage, type PrintOptions } from './print.js';
