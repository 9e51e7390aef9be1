// CommonJS entry: makes ncc emit a CommonJS bundle (ssh2 needs __dirname, absent in ESM bundles).
require('../action.ts').runAction('deploy');
