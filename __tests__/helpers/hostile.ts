/** Strings that break naive shell quoting; every one must reach a host unchanged. */
export const HOSTILE = [
  '; rm -rf /',
  '$(id)',
  '`id`',
  "it's",
  '"double"',
  'new\nline',
  'tab\there',
  '  spaces  ',
  'ünïcødé ✓ 日本',
  '*',
  '~root',
  '$HOME',
  '${IFS}',
  '\\back\\slash',
  '-rf',
  '--',
  '!event',
  '&& echo pwned',
  '| cat /etc/passwd',
  "'; echo pwned; '",
  ''
];
