// CommonJS entry of the post step (see main.cjs for why CommonJS).
require('../post.ts').run();
