// deployguard's post-deploy entry point; the code is in ../bundle (built by scripts/bundle.mjs).
require('../bundle/index.cjs').runAction('post-deploy');
