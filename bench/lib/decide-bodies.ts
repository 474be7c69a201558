// Protobuf DecideRequest bodies for loading the decision service alone: the request mix as the
// Lua gateway would encode it (every field the gateway knows), one body per request.
import { DecideRequestType } from '../../decision-service/src/wire/codec.ts';
import { requestMix, toDecideRequest } from './request-mix.ts';

export function decideBodies(count = 2000, seed = 7): Buffer[] {
  return requestMix(count, seed).map((m, i) => {
    const msg = DecideRequestType.fromObject(toDecideRequest(m, i));
    return Buffer.from(DecideRequestType.encode(msg).finish());
  });
}

/** The same bodies as DECIDE frames of the framed transport (uint32 length, type 1, payload). */
export function decideFrames(count = 2000, seed = 7): Buffer[] {
  return decideBodies(count, seed).map((b) => {
    const f = Buffer.alloc(5 + b.length);
    f.writeUInt32BE(b.length + 1, 0);
    f[4] = 1;
    b.copy(f, 5);
    return f;
  });
}
