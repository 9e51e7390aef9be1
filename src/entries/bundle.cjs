// CommonJS entry of the one bundle (ssh2 needs __dirname, absent in ESM bundles). The files in
// dist/<name>/ call the function of their entry point: an action step, the post step, the CLI.
// Each entry's modules are evaluated on first call only, so the CLI never loads @actions/core
// (and its HTTP client), which costs a noticeable part of a second at every start.
module.exports = {
  runAction: (...args) => require('../action.ts').runAction(...args),
  runPost: (...args) => require('../post.ts').run(...args),
  cli: (...args) => require('../cli.ts').main(...args)
};
