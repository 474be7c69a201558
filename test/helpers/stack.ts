// The smallest real stack an e2e cache test needs: an echo upstream, the decision service with
// the default policy, and the Lua gateway with `/` as an async location (scored after the
// response) that reports outcomes every 50 ms.
import { startEchoUpstream } from './servers.ts';
import { startService } from './service.ts';
import { luaVariant } from './variants.ts';

export interface AsyncStack {
  /** the gateway's base URL */
  url: string;
  stop(): Promise<void>;
}

export async function startAsyncLuaStack(): Promise<AsyncStack> {
  const upstream = await startEchoUpstream();
  const service = await startService();
  const nginx = await luaVariant.start({
    upstream: `127.0.0.1:${upstream.port}`,
    service: service.addr,
    locations: `
    location / {
        set $verdict_mode async;
        {{guard}}
    }`,
    init: { outcome_flush_ms: 50 },
  });
  return {
    url: nginx.url,
    stop: async () => {
      await nginx.stop();
      await service.stop();
      await upstream.close();
    },
  };
}
