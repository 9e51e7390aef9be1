// deployguard's pre-deploy entry point; the code is in ../bundle (built by scripts/bundle.mjs).
require('../bundle/index.cjs').runAction('pre-deploy');
