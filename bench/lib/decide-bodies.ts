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
