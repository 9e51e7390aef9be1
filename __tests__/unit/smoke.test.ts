import * as core from '@actions/core';
test('toolchain loads ESM packages', () => {
  expect(typeof core.setSecret).toBe('function');
});
