// Response writers shared by every route, so status codes, Content-Type and
// error bodies are identical everywhere (the docker CLI parses error bodies
// only when Content-Type is exactly application/json).
import type { ServerResponse } from 'node:http';
import { httpStatusOf, messageOf } from '../errors.js';

export function sendJSON(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body) + '\n';
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

export function sendStatus(res: ServerResponse, status: number): void {
  res.writeHead(status);
  res.end();
}

export function errorBody(message: string): string {
  return JSON.stringify({ message }) + '\n';
}

export function sendError(res: ServerResponse, err: unknown): number {
  const status = httpStatusOf(err);
  if (res.headersSent) {
    // A stream already started: the only honest signal left is to cut it.
    res.destroy();
    return status;
  }
  if (status === 304) {
    sendStatus(res, 304);
    return status;
  }
  const text = errorBody(messageOf(err));
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
  return status;
}
