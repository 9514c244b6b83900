// `--delta-data-root`: another skiff data root (the other rootfs partition
// during a host OS update) whose images may serve as delta bases. Opened read
// only: no recovery runs there and nothing is written.
import type { Logger } from '../log/logger.js';
import { ImageStore } from '../store/images.js';
import { LayerStore } from '../store/layers.js';
import type { BaseStore } from './apply.js';

export async function openDeltaStore(root: string, logger: Logger): Promise<BaseStore> {
  const layers = await LayerStore.openReadOnly(root, logger);
  const images = await ImageStore.open(root, layers, logger, { readOnly: true });
  logger.info('delta data root opened', { root, images: images.list().length });
  return { layers, images };
}
