// Docker's `label` filter, as every list, prune and event stream applies it.

/** `key` or `key=value` against a label set (moby's MatchKVList): only the set's own keys count. */
export function labelMatches(labels: Record<string, string> | null | undefined, filter: string): boolean {
  const i = filter.indexOf('=');
  const key = i === -1 ? filter : filter.slice(0, i);
  if (!labels || !Object.prototype.hasOwnProperty.call(labels, key)) return false;
  return i === -1 || labels[key] === filter.slice(i + 1);
}
