// A small router: method + path pattern → handler. Patterns are regular
// expressions over the unversioned path because image names contain '/'
// and ':' unescaped (`/images/myrepo/bb:v1/json`), which no segment router handles.
import type { RequestContext } from './context.js';

export type Handler = (ctx: RequestContext) => Promise<void> | void;

interface Route {
  method: string;
  pattern: RegExp;
  handler: Handler;
}

export interface Match {
  handler: Handler;
  params: Record<string, string>;
}

export class Router {
  private readonly routes: Route[] = [];

  /** `path` is a regex source anchored at both ends; named groups become params. */
  add(method: string, path: string, handler: Handler): this {
    this.routes.push({ method, pattern: new RegExp(`^${path}$`), handler });
    return this;
  }
  get(path: string, h: Handler): this {
    return this.add('GET', path, h);
  }
  post(path: string, h: Handler): this {
    return this.add('POST', path, h);
  }
  put(path: string, h: Handler): this {
    return this.add('PUT', path, h);
  }
  delete(path: string, h: Handler): this {
    return this.add('DELETE', path, h);
  }
  head(path: string, h: Handler): this {
    return this.add('HEAD', path, h);
  }

  /** Routes are tried in the order they were added: put specific patterns first. */
  match(method: string, path: string): Match | undefined {
    for (const r of this.routes) {
      if (r.method !== method) continue;
      const m = r.pattern.exec(path);
      if (!m) continue;
      const params: Record<string, string> = {};
      for (const [k, v] of Object.entries(m.groups ?? {})) {
        if (v === undefined) continue;
        try {
          params[k] = decodeURIComponent(v);
        } catch {
          params[k] = v;
        }
      }
      return { handler: r.handler, params };
    }
    return undefined;
  }
}
