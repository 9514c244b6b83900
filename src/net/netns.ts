// The per-container network namespace's name (the OCI runtime joins it by path).
export function netnsName(containerId: string): string {
  return `skiff-${containerId.slice(0, 12)}`;
}
