import { runAction } from './action.js';

export { LOCK_STATE, loadActionSettings, maskSecret } from './action.js';

/** The action's main step: every phase of the guarded deploy. */
export async function run(): Promise<void> {
  await runAction('all');
}
