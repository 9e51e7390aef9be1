// CommonJS entry of the one bundle (ssh2 needs __dirname, absent in ESM bundles). The files in
// dist/<name>/ call the function of their entry point: an action step, the post step, the CLI.
module.exports = {
  runAction: require('../action.ts').runAction,
  runPost: require('../post.ts').run,
  cli: require('../cli.ts').main
};
