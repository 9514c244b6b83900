import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { InvalidParameter } from '../../errors.js';
import type { FilesBackend } from '../backend.js';
import { boolValue, type RequestContext } from '../context.js';
import { sendJSON } from '../respond.js';
import type { Router } from '../router.js';

const ID = '(?<id>[^/]+)';

/** moby's ArchiveFormValues (its message has no space before "cannot"). */
function archivePath(ctx: RequestContext): string {
  const path = ctx.query.get('path');
  if (!path) throw new InvalidParameter('bad parameter: pathcannot be empty');
  return path;
}

function statHeader(stat: unknown): string {
  return Buffer.from(JSON.stringify(stat)).toString('base64');
}

async function streamTar(ctx: RequestContext, tar: AsyncGenerator<Buffer>, headers: Record<string, string>): Promise<void> {
  ctx.res.writeHead(200, { 'Content-Type': 'application/x-tar', ...headers });
  await pipeline(Readable.from(tar, { objectMode: false }), ctx.res);
}

export function fileRoutes(router: Router, f: FilesBackend): void {
  router.head(`/containers/${ID}/archive`, async (ctx) => {
    const stat = await f.stat(ctx.params.id as string, archivePath(ctx));
    ctx.res.writeHead(200, { 'X-Docker-Container-Path-Stat': statHeader(stat), 'Content-Type': 'text/plain; charset=utf-8' });
    ctx.res.end();
  });
  router.get(`/containers/${ID}/archive`, async (ctx) => {
    const { stat, tar } = await f.archive(ctx.params.id as string, archivePath(ctx));
    await streamTar(ctx, tar, { 'X-Docker-Container-Path-Stat': statHeader(stat) });
  });
  router.put(`/containers/${ID}/archive`, async (ctx) => {
    const path = archivePath(ctx);
    await f.extract(ctx.params.id as string, path, ctx.req, {
      noOverwriteDirNonDir: boolValue(ctx.query, 'noOverwriteDirNonDir'),
      copyUIDGID: boolValue(ctx.query, 'copyUIDGID'),
    });
    ctx.res.writeHead(200, { 'Content-Length': '0' });
    ctx.res.end();
  });
  router.get(`/containers/${ID}/export`, async (ctx) => {
    await streamTar(ctx, await f.export(ctx.params.id as string), {});
  });
  router.get(`/containers/${ID}/changes`, async (ctx) => sendJSON(ctx.res, 200, await f.changes(ctx.params.id as string)));
}
