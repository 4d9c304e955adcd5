// node-redis against ordo: pub/sub, then resume from the log with XREAD.
const { createClient } = require("redis");
const assert = require("assert");

(async () => {
  const port = Number(process.argv[2]);
  const pub = createClient({ socket: { host: "127.0.0.1", port } });
  const sub = pub.duplicate();
  await pub.connect();
  await sub.connect();
  const got = [];
  let resolve;
  const done = new Promise((r) => { resolve = r; });
  // subscribe() resolves once the server confirmed the subscription.
  await sub.subscribe("js", (msg) => {
    got.push(msg);
    if (got.length === 3) resolve();
  });
  for (let i = 0; i < 3; i++) assert.strictEqual(await pub.publish("js", `m${i}`), 1);
  await Promise.race([done, new Promise((_, rej) => setTimeout(() => rej(new Error("timeout")), 10000))]);
  assert.deepStrictEqual(got, ["m0", "m1", "m2"]);
  const entries = (await pub.xRead({ key: "js", id: "0" }))[0].messages;
  assert.deepStrictEqual(entries.map((e) => e.message.payload), got);
  const resume = (await pub.xRead({ key: "js", id: entries[1].id }))[0].messages;
  assert.deepStrictEqual(resume.map((e) => e.message.payload), ["m2"]);
  await sub.quit();
  await pub.quit();
  console.log("OK");
  process.exit(0); // do not wait for the timeout timer
})().catch((e) => { console.error(e); process.exit(1); });
