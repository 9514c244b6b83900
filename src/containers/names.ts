// Container names as Docker makes and checks them.
import { randomInt } from 'node:crypto';
import { InvalidParameter } from '../errors.js';

const LEFT = ['admiring', 'bold', 'brave', 'calm', 'clever', 'eager', 'elated', 'fervent', 'gallant', 'gentle', 'happy', 'jolly', 'keen', 'kind', 'lucid', 'nifty', 'quirky', 'serene', 'sharp', 'stoic', 'sweet', 'tender', 'vibrant', 'wizardly', 'zealous'];
const RIGHT = ['babbage', 'bohr', 'curie', 'darwin', 'dijkstra', 'einstein', 'euler', 'fermi', 'gauss', 'hopper', 'kepler', 'knuth', 'lamport', 'lovelace', 'meitner', 'newton', 'noether', 'pascal', 'ritchie', 'shannon', 'tesla', 'thompson', 'turing', 'wozniak', 'yonath'];

export function randomName(): string {
  return `${LEFT[randomInt(LEFT.length)]}_${RIGHT[randomInt(RIGHT.length)]}`;
}

/** Docker's rule: [a-zA-Z0-9][a-zA-Z0-9_.-]+, with an optional leading slash. */
export function checkName(name: string): string {
  const n = name.startsWith('/') ? name.slice(1) : name;
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/.test(n)) {
    throw new InvalidParameter(`Invalid container name (${name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
  }
  return n;
}
