import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseFlags, UsageError, type FlagSpec } from '../../src/cli/flags.js';

const specs: FlagSpec[] = [
  { name: 'host', short: 'H', type: 'list', description: '' },
  { name: 'data-root', type: 'string', description: '', default: '/var/lib/skiff' },
  { name: 'debug', short: 'D', type: 'boolean', description: '' },
  { name: 'max', type: 'int', description: '', default: 3 },
];

test('repeatable flags, defaults and what was given', () => {
  const f = parseFlags(['-H', 'unix:///a', '--host=tcp://1.2.3.4:5', '-D'], specs, 'daemon');
  assert.deepEqual(f.values.get('host'), ['unix:///a', 'tcp://1.2.3.4:5']);
  assert.equal(f.values.get('data-root'), '/var/lib/skiff');
  assert.equal(f.values.get('debug'), true);
  assert.equal(f.values.get('max'), 3);
  assert.deepEqual([...f.given].sort(), ['debug', 'host']);
});

test('a boolean set to false still counts as given', () => {
  const f = parseFlags(['--debug=false'], specs, 'daemon');
  assert.equal(f.values.get('debug'), false);
  assert.ok(f.given.has('debug'));
});

test('unknown flags are usage errors naming the flag', () => {
  assert.throws(() => parseFlags(['--bogus'], specs, 'daemon'), (e: unknown) => e instanceof UsageError && e.message === 'unknown flag: --bogus');
  assert.throws(() => parseFlags(['-x'], specs, 'daemon'), /unknown shorthand flag: 'x' in -x/);
});

test('integers are checked', () => {
  assert.throws(() => parseFlags(['--max', 'ten'], specs, 'daemon'), /invalid argument "ten" for "--max" flag/);
  assert.equal(parseFlags(['--max=7'], specs, 'daemon').values.get('max'), 7);
});

test('a string flag without a value is refused', () => {
  assert.throws(() => parseFlags(['--data-root'], specs, 'daemon'), /flag needs an argument: --data-root/);
});

test('stopEarly leaves the subcommand and its flags alone', () => {
  const f = parseFlags(['-H', 'unix:///s', 'daemon', '--debug', '--data-root', '/x'], [specs[0] as FlagSpec], '', { stopEarly: true });
  assert.deepEqual(f.args, ['daemon', '--debug', '--data-root', '/x']);
  assert.deepEqual([...f.given], ['host']);
});

test('positionals and -- pass through', () => {
  const f = parseFlags(['a', '--debug', 'b', '--', '--not-a-flag'], specs, 'x');
  assert.deepEqual(f.args, ['a', 'b', '--not-a-flag']);
});
