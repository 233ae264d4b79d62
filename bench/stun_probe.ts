/**
 * Waits until a STUN server answers a Binding request on loopback.
 *
 * @module
 */

/**
 * Sends Binding requests to `127.0.0.1:port` every 100 ms until one is answered with a Binding
 * success response or `timeoutMs` passes. Returns whether it was answered.
 *
 * @example
 * ```ts
 * const up = await waitForStun(3478, 5000);
 * ```
 */
export async function waitForStun(port: number, timeoutMs: number): Promise<boolean> {
  const socket = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const request = new Uint8Array(20);
  request.set([0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42]);
  crypto.getRandomValues(request.subarray(8));
  const deadline = Date.now() + timeoutMs;
  let answered = false;
  const reader = (async () => {
    try {
      for (let i = 0; i < 10_000 && !answered; i++) {
        const [data] = await socket.receive();
        if (
          data.length >= 20 && data[0] === 0x01 && data[1] === 0x01 &&
          data.subarray(8, 20).every((b, j) => b === request[8 + j])
        ) answered = true;
      }
    } catch {
      // socket closed
    }
  })();
  while (!answered && Date.now() < deadline) {
    await socket.send(request, { transport: "udp", hostname: "127.0.0.1", port }).catch(() => 0);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  socket.close();
  await reader;
  return answered;
}
