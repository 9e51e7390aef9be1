// deployguard's main entry point; the code is in ../bundle (built by scripts/bundle.mjs).
require('../bundle/index.cjs').runAction('all');
