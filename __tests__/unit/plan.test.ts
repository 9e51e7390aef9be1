import { lockScript, newestFirst, planHost, planPrune, parseReleaseList } from '../../src/plan/plan.js';
import { layoutFor } from '../../src/remote/layout.js';
import { BASE_INPUTS, settingsFrom } from '../helpers/settings.js';

const now = new Date('2026-11-26T12:00:00Z');
const opts = { now, fileCount: 3 };

describe('planHost (releases)', () => {
  const settings = settingsFrom({
    ...BASE_INPUTS,
    'service-name': 'myapp',
    'release-id': 'r2',
    'before-switch': 'npm ci'
  });
  const layout = layoutFor(settings.target);
  const plan = planHost(settings, layout, { previous: '/srv/app/releases/r1' }, opts);

  test('steps run in the checklist order', () => {
    expect(plan.steps.map(s => s.id)).toEqual([
      'stage',
      'upload',
      'verify',
      'promote',
      'before-switch',
      'stop',
      'switch',
      'start',
      'running',
      'checks'
    ]);
  });

  test('the service is touched only after upload, verification and before-switch', () => {
    const firstTouch = plan.steps.findIndex(s => s.touchesService);
    expect(plan.steps.slice(0, firstTouch).map(s => s.id)).toContain('before-switch');
    expect(plan.steps[firstTouch]!.id).toBe('stop');
  });

  test('atomic steps register their undo only after they succeed', () => {
    expect(plan.steps.filter(s => s.undoAfterSuccess).map(s => s.id)).toEqual(['promote', 'switch']);
  });

  test('each host-changing step carries its undo, and the undo chain restores the old release', () => {
    const undos = plan.steps
      .filter(s => s.undo)
      .map(s => s.undo!.id)
      .reverse();
    expect(undos).toEqual(['stop-new', 'switch-back', 'restart-old', 'mark-failed', 'unstage']);
    const switchBack = plan.steps.find(s => s.id === 'switch')!.undo!;
    expect(switchBack.action).toEqual({
      kind: 'exec',
      script: expect.objectContaining({
        text: [
          'if [ ! -d /srv/app/releases/r1 ]; then echo "release directory missing: "/srv/app/releases/r1 >&2; exit 6; fi',
          'ln -sfn -- /srv/app/releases/r1 /srv/app/current.tmp-rollback-r2 && mv -T -- /srv/app/current.tmp-rollback-r2 /srv/app/current'
        ].join('\n')
      })
    });
  });

  test('switch is atomic: a temp link, then rename over current; never to a missing release', () => {
    const sw = plan.steps.find(s => s.id === 'switch')!;
    expect(sw.action.kind === 'exec' && sw.action.script.text).toBe(
      [
        'if [ ! -d /srv/app/releases/r2 ]; then echo "release directory missing: "/srv/app/releases/r2 >&2; exit 6; fi',
        'ln -sfn -- /srv/app/releases/r2 /srv/app/current.tmp-r2 && mv -T -- /srv/app/current.tmp-r2 /srv/app/current'
      ].join('\n')
    );
  });

  test('systemd stop/start are exact and quote the unit', () => {
    const s = settingsFrom({ ...BASE_INPUTS, 'service-name': 'my-app@1.service' });
    const p = planHost(s, layoutFor(s.target), {}, opts);
    const text = (id: string) => {
      const a = p.steps.find(x => x.id === id)!.action;
      return a.kind === 'exec' ? a.script.text : '';
    };
    expect(text('stop')).toBe('systemctl stop -- my-app@1.service');
    expect(text('start')).toBe('systemctl start -- my-app@1.service');
  });

  test('a first deploy undoes the switch by removing current, and has nothing to start again', () => {
    const first = planHost(settings, layout, {}, opts);
    expect(first.steps.find(s => s.id === 'switch')!.undo!.id).toBe('unswitch');
    expect(first.steps.find(s => s.id === 'stop')!.undo).toBeUndefined();
    expect(first.previousRelease).toBeUndefined();
  });

  test('the lock records who, what and when, and the verify step expects the exact file count', () => {
    const text = lockScript(settings, layout, 'tok-1', now).text;
    expect(text).toContain('"token":"tok-1"');
    expect(text).toContain('"release":"r2"');
    expect(text).toContain(`"at":"${now.toISOString()}"`);
    const verify = plan.steps.find(s => s.id === 'verify')!.action;
    expect(verify.kind === 'verify' && verify.script.text).toContain('if [ "$count" -ne 3 ]');
  });
});

describe('planHost (in-place)', () => {
  const settings = settingsFrom({ ...BASE_INPUTS, strategy: 'in-place', 'service-name': 'myapp' });
  const layout = layoutFor(settings.target);

  test('backs up the live tree before the service stops and restores it on undo', () => {
    const plan = planHost(settings, layout, { previous: '/srv/app' }, opts);
    expect(plan.steps.map(s => s.id)).toEqual([
      'stage',
      'upload',
      'verify',
      'backup',
      'stop',
      'switch',
      'start',
      'running',
      'checks'
    ]);
    expect(plan.backup).toBe('/srv/app.backup-20261126-120000');
    const restore = plan.steps.find(s => s.id === 'switch')!.undo!;
    expect(restore.action.kind === 'exec' && restore.action.script.text).toContain(
      'cp -a -- /srv/app.backup-20261126-120000 /srv/app.deployguard-restore'
    );
  });

  test('keeps its own state outside the live tree', () => {
    expect(layout.stateDir).toBe('/srv/.app.deployguard');
    expect(layout.lockDir).toBe('/srv/.app.deployguard/lock');
  });
});

describe('planPrune', () => {
  const list = parseReleaseList(
    [
      'r1\tgood 2026-11-20T00:00:00Z',
      'r2\tfailed 2026-11-21T00:00:00Z',
      'r3\tgood 2026-11-22T00:00:00Z',
      'r4\tfailed 2026-11-23T00:00:00Z',
      'r5\tgood 2026-11-24T00:00:00Z',
      'x\tunknown'
    ].join('\n')
  );

  test('only good releases count toward keep; the newest failure is kept for debugging', () => {
    expect(planPrune(list, 'r5', 2).sort()).toEqual(['r1', 'r2']);
  });

  test('never deletes the live release or the last good one, even with keep 1', () => {
    const doomed = planPrune(list, 'r3', 1);
    expect(doomed).not.toContain('r3');
    expect(doomed).not.toContain('r5');
  });

  test('releases without a record are not ours to delete', () => {
    expect(planPrune(list, 'r5', 1)).not.toContain('x');
  });

  test('failed releases never push a good one out', () => {
    const many = parseReleaseList(
      [
        'g1\tgood 2026-01-01T00:00:00Z',
        'f1\tfailed 2026-02-01T00:00:00Z',
        'f2\tfailed 2026-03-01T00:00:00Z',
        'f3\tfailed 2026-04-01T00:00:00Z',
        'g2\tgood 2026-05-01T00:00:00Z'
      ].join('\n')
    );
    expect(planPrune(many, 'g2', 2).sort()).toEqual(['f1', 'f2']);
  });

  test('newest first by the record time, then by id; a release without a time comes last', () => {
    const rs = parseReleaseList(
      [
        'b\tgood 2026-11-20T00:00:00Z',
        'old\tgood 2026-01-01T00:00:00Z',
        'none\tgood',
        'a\tgood 2026-11-20T00:00:00Z',
        'new\tgood 2026-12-01T09:30:00Z',
        'B\tgood 2026-11-20T00:00:00Z'
      ].join('\n')
    );
    // Code-unit order: 'b' > 'a' > 'B' (a locale's order would put 'B' between them).
    expect([...rs].sort(newestFirst).map(r => r.id)).toEqual(['new', 'b', 'a', 'B', 'old', 'none']);
  });
});
