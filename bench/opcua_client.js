// The node-opcua client side of `bench/opcua.sh`: subscribes to
// ns=2;s=Scale.V0 .. V(N-1) on ENDPOINT with the same parameters as tagproc's
// opcua input (publishing 100 ms, sampling 0, queue 10), counts the value
// notifications for SECONDS after the subscription is set up and prints
// {"values":N,"cpu_s":S,"setup_s":T} (CPU of this process over the window).
"use strict";
const opcua = require("node-opcua");
const endpoint = process.env.ENDPOINT;
const n = Number(process.env.N_VARS);
const seconds = Number(process.env.SECONDS_WINDOW || 20);

async function main() {
    const t0 = Date.now();
    // a loaded machine makes the server slow to create 10,000 monitored items
    const client = opcua.OPCUAClient.create({ endpointMustExist: false, defaultTransactionTimeout: 300000,
        securityMode: opcua.MessageSecurityMode.None, securityPolicy: opcua.SecurityPolicy.None });
    await client.connect(endpoint);
    const session = await client.createSession();
    const sub = await session.createSubscription2({ requestedPublishingInterval: 100,
        requestedMaxKeepAliveCount: 10, requestedLifetimeCount: 300, maxNotificationsPerPublish: 10000,
        publishingEnabled: true, priority: 0 });
    let values = 0;
    const items = [];
    for (let i = 0; i < n; i++)
        items.push({ nodeId: `ns=2;s=Scale.V${i}`, attributeId: opcua.AttributeIds.Value });
    const group = await sub.monitorItems(items, { samplingInterval: 0, queueSize: 10, discardOldest: true },
        opcua.TimestampsToReturn.Both);
    group.on("changed", () => { values++; });
    const setup = (Date.now() - t0) / 1000;
    console.log(JSON.stringify({ ready: setup })); // the bench starts tagproc's window now
    values = 0;
    const c0 = process.cpuUsage();
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const c = process.cpuUsage(c0);
    const got = values;
    console.log(JSON.stringify({ values: got, cpu_s: (c.user + c.system) / 1e6, setup_s: setup }));
    await session.close();
    await client.disconnect();
    process.exit(0);
}
main().catch((e) => { console.error(e); process.exit(1); });
