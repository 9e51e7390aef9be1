/** The rollout order of a fleet, and how its settings are read. */
import { batchSize, canaryBatches, rolloutBatches } from '../../src/plan/rollout.js';
import { uploadProgress } from '../../src/execute/upload.js';
import { wantsCompression } from '../../src/io/ssh.js';
import { parseSettings } from '../../src/settings/parse.js';
import { BASE_INPUTS, FAKE_KEY, settingsFrom } from '../helpers/settings.js';

describe('rollout batches', () => {
  test.each([
    [5, { canary: 0, maxParallel: 1 }, [[0], [1], [2], [3], [4]]],
    [5, { canary: 1, maxParallel: 2 }, [[0], [1, 2], [3, 4]]],
    [5, { canary: 3, maxParallel: 2 }, [[0, 1], [2], [3, 4]]],
    [
      4,
      { canary: 0, maxParallel: { percent: 50 } },
      [
        [0, 1],
        [2, 3]
      ]
    ],
    [3, { canary: 0, maxParallel: { percent: 10 } }, [[0], [1], [2]]],
    [2, { canary: 5, maxParallel: 10 }, [[0, 1]]],
    [
      20,
      { canary: 1, maxParallel: 10 },
      [[0], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [11, 12, 13, 14, 15, 16, 17, 18, 19]]
    ]
  ] as const)('%i hosts, %j', (hosts, rollout, expected) => {
    const batches = rolloutBatches(hosts, rollout);
    expect(batches).toEqual(expected);
    // Every host exactly once, in order.
    expect(batches.flat()).toEqual(Array.from({ length: hosts }, (_, i) => i));
  });

  test('batch size rounds a percentage up, and is at least one and at most the fleet', () => {
    expect(batchSize(7, { canary: 0, maxParallel: { percent: 25 } })).toBe(2);
    expect(batchSize(1, { canary: 0, maxParallel: { percent: 1 } })).toBe(1);
    expect(batchSize(3, { canary: 0, maxParallel: 50 })).toBe(3);
    expect(canaryBatches(5, { canary: 3, maxParallel: 2 })).toBe(2);
    expect(canaryBatches(5, { canary: 0, maxParallel: 2 })).toBe(0);
  });
});

describe('rollout settings', () => {
  test('from the file, a number or a percentage; inputs override', () => {
    const file = (v: string) =>
      settingsFrom(BASE_INPUTS, `version: 1\ndeploy: { max-parallel: ${v}, canary: 2 }`);
    expect(file('3').rollout).toEqual({ canary: 2, maxParallel: 3 });
    expect(file("'25%'").rollout).toEqual({ canary: 2, maxParallel: { percent: 25 } });
    expect(settingsFrom({ ...BASE_INPUTS, 'max-parallel': '40%', canary: '1' }).rollout).toEqual({
      canary: 1,
      maxParallel: { percent: 40 }
    });
    expect(settingsFrom(BASE_INPUTS).rollout).toEqual({ canary: 0, maxParallel: 1 });
  });

  test('bad values are refused with the key and an example', () => {
    expect(() => settingsFrom(BASE_INPUTS, "version: 1\ndeploy: { max-parallel: '150%' }")).toThrow(
      /max-parallel[\s\S]*25%/
    );
    expect(() => settingsFrom(BASE_INPUTS, 'version: 1\ndeploy: { max-parallel: 0 }')).toThrow(
      /max-parallel/
    );
    expect(() => settingsFrom({ ...BASE_INPUTS, 'max-parallel': 'lots' })).toThrow(
      /input `max-parallel`: expected a percentage like 25%/
    );
    expect(() => settingsFrom({ ...BASE_INPUTS, canary: '-1' })).toThrow(/input `canary`/);
  });
});

describe('upload progress', () => {
  test('percent, MB sent of the total, rate and time left', () => {
    expect(uploadProgress('web-1', 45e6, 99e6, 1500)).toBe(
      'web-1: upload 45% (45.0/99.0 MB, 30.0 MB/s, about 2 s left)'
    );
    expect(uploadProgress('web-1', 0, 99e6, 5000)).toBe(
      'web-1: upload 0% (0.0/99.0 MB, 0.0 MB/s, time left unknown)'
    );
    // Headers and padding make the stream slightly longer than the files: never past 100%.
    expect(uploadProgress('web-1', 101e6, 99e6, 2000)).toMatch(/^web-1: upload 100% \(99\.0\/99\.0 MB/);
  });
});

describe('per-host keys', () => {
  const yaml = [
    'version: 1',
    'hosts:',
    `  - { name: web-1, host: 192.0.2.1, user: deploy, host-key: '${BASE_INPUTS['host-key']}' }`,
    `  - { name: web-2, host: 192.0.2.2, user: deploy, host-key: '${BASE_INPUTS['host-key']}', ssh-key-env: WEB2_KEY }`
  ].join('\n');
  const { host: _host, ...inputs } = BASE_INPUTS;

  test('a host names the variable holding its own key; it is read, masked, and used for that host only', () => {
    const masked: string[] = [];
    const own = FAKE_KEY.replace('b3Bl', 'b3Bm');
    const s = parseSettings({
      input: n => inputs[n],
      env: { WEB2_KEY: own },
      configText: yaml,
      now: new Date(),
      onSecret: v => masked.push(v)
    });
    expect(s.hosts.map(h => h.privateKey)).toEqual([undefined, own]);
    expect(masked).toContain(own);
  });

  test('an unset variable is a config error naming the host and the variable', () => {
    expect(() => settingsFrom(inputs, yaml)).toThrow(
      /host web-2: ssh-key-env names WEB2_KEY, which is not set/
    );
  });
});

describe('SSH compression', () => {
  test.each([
    ['auto', '203.0.113.10', true],
    ['auto', 'deploy.example.com', true],
    ['auto', '127.0.0.1', false],
    ['auto', '10.1.2.3', false],
    ['auto', '172.20.0.5', false],
    ['auto', '172.32.0.5', true],
    ['auto', '192.168.1.9', false],
    ['auto', 'db.internal', false],
    ['auto', 'fd12:3456::1', false],
    [true, '127.0.0.1', true],
    [false, '203.0.113.10', false]
  ] as const)('%s for %s: %s', (setting, host, expected) => {
    expect(wantsCompression(setting, host)).toBe(expected);
  });
});
