/**
 * Worker half of the wake-up benchmark: echoes every signal on `ping` to
 * `pong`, using an EventLoop configured like the main thread's.
 */
import { Epoll, eventfdRead, eventfdWrite, EventLoop } from "../sys/mod.ts";
import type { BusyPollOptions } from "../sys/mod.ts";

interface Setup {
  ping: number;
  pong: number;
  busyPoll: BusyPollOptions;
  blocking: boolean;
}

const scope = self as unknown as {
  onmessage: ((e: MessageEvent<Setup | "stop">) => void) | null;
  postMessage(msg: unknown): void;
  close(): void;
};

let loop: EventLoop | undefined;
scope.onmessage = async (e) => {
  if (e.data === "stop") {
    loop?.stop();
    await loop?.close();
    scope.postMessage("stopped");
    scope.close();
    return;
  }
  const { ping, pong, busyPoll, blocking } = e.data;
  loop = new EventLoop(blocking ? { wait: "blocking", busyPoll } : { busyPoll });
  loop.add(ping, Epoll.IN, () => {
    eventfdRead(ping);
    eventfdWrite(pong);
  });
  const running = loop.run();
  scope.postMessage("ready");
  await running;
};
